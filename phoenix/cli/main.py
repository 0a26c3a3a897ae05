"""The `phoenix` command, for the people on call (docs/operations.md).

    phoenix [--env E] [--region R] [--profile P] COMMAND ...

Reads: `status`, `history FLEET`, `watch RELEASE_ID` (each with `--json`). Requests, as
`phoenix` events the controller acts on: `release`, `rollback`, `pause`, `resume`,
`approve`, `reject` (a canary step held for a person). Every request says who asks from
the caller's identity (STS GetCallerIdentity). Bad input (an unknown environment, fleet
or AMI, nothing to roll back or to decide) is one line on stderr, exit code 2, and no
event; an AWS error is one line and exit code 1.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from phoenix.cli import reads, render
from phoenix.cli.world import CliError, World
from phoenix.kernel.events import DetailType
from phoenix.kernel.names import execution_name
from phoenix.rollback.runtime.logic import decide

app = typer.Typer(
    name="phoenix",
    help="Operate phoenix's fleets: status, history, releases, rollbacks, approvals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")

Json = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
Reason = Annotated[str, typer.Option("--reason", help="why (recorded with who asked)")]
Fleet = Annotated[str, typer.Argument(help="the fleet's name")]


@app.callback()
def options(
    ctx: typer.Context,
    env: Annotated[
        str | None, typer.Option("--env", "-e", envvar="PHOENIX_ENV", help="environment")
    ] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (else AWS_REGION)")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile (else AWS_PROFILE)")] = None,
) -> None:
    ctx.obj = {"env": env, "region": region, "profile": profile}


def _run(ctx: typer.Context, body: Callable[[World], int | None]) -> None:
    """Run `body` with the world; CliError exits 2, an AWS error 1, each as one line."""
    try:
        code = body(World(**ctx.obj))
    except CliError as error:
        err.print(f"phoenix: {error}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except (ClientError, BotoCoreError) as error:
        err.print(f"phoenix: {error}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code or 0)


@app.command()
def status(ctx: typer.Context, json: Json = False) -> None:
    """Each fleet: its pointer, what each slot serves, the release in flight, the last."""

    def body(world: World) -> None:
        rows = reads.status(world)
        if json:
            render.as_json(out, rows)
        else:
            out.print(render.status_table(world.environment.name, rows))

    _run(ctx, body)


@app.command()
def history(  # noqa: PLR0917 (typer maps each parameter to an argument or option)
    ctx: typer.Context,
    fleet: Fleet,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many")] = 20,
    since: Annotated[str | None, typer.Option(help="started at or after (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="started at or before (ISO 8601)")] = None,
    json: Json = False,
) -> None:
    """The fleet's releases, newest first, each with its steps and judgments."""

    def body(world: World) -> None:
        world.fleet(fleet)
        rows = reads.history_of(
            world, fleet, limit=limit, since=_time(since, "--since"), until=_time(until, "--until")
        )
        if json:
            render.as_json(out, rows)
        else:
            out.print(render.history_text(fleet, rows), end="")

    _run(ctx, body)


def _time(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} {value!r} is not an ISO 8601 time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


@app.command()
def release(
    ctx: typer.Context,
    fleet: Fleet,
    ami: Annotated[str, typer.Option(help="the AMI to release (in this region)")],
    reason: Annotated[str, typer.Option(help="why (recorded with who asked)")] = "",
) -> None:
    """Release AMI to the fleet, with its strategy, gates and rollback."""

    def body(world: World) -> None:
        world.fleet(fleet)
        if not AMI.match(ami):
            raise CliError(f"{ami!r} is not an AMI id")
        try:
            images = world.client("ec2").describe_images(ImageIds=[ami])["Images"]
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")).startswith("InvalidAMIID"):
                images = []
            else:
                raise
        if not images:
            raise CliError(f"no AMI {ami} in {world.session.region_name}")
        detail = {"fleet": fleet, "ami": ami, "requested_by": world.caller}
        event = world.put("Release Requested", detail | ({"reason": reason} if reason else {}))
        out.print(f"release {execution_name(fleet, event)} requested: {ami} to {fleet}")

    _run(ctx, body)


@app.command()
def rollback(ctx: typer.Context, fleet: Fleet, reason: Reason) -> None:
    """Roll the fleet back: the release in flight, or its last success."""

    def body(world: World) -> None:
        world.fleet(fleet)
        item = reads.fleet_items(world, [fleet])[fleet]
        decision = decide(item, datetime.now(UTC))
        if decision.action in ("nothing", "busy"):
            raise CliError(f"nothing to roll back on {fleet}: {decision.why}")
        world.put("Rollback Requested", _request(world, fleet, reason))
        out.print(f"rollback of release {decision.release_id} requested on {fleet}")

    _run(ctx, body)


@app.command()
def pause(ctx: typer.Context, fleet: Fleet, reason: Reason) -> None:
    """Refuse the fleet's releases until it is resumed."""

    def body(world: World) -> None:
        world.fleet(fleet)
        world.put("Releases Paused", _request(world, fleet, reason))
        out.print(f"{fleet}: releases paused ({reason})")

    _run(ctx, body)


@app.command()
def resume(ctx: typer.Context, fleet: Fleet, reason: Reason = "") -> None:
    """Take the fleet's releases again."""

    def body(world: World) -> None:
        world.fleet(fleet)
        world.put("Releases Resumed", _request(world, fleet, reason))
        out.print(f"{fleet}: releases resumed")

    _run(ctx, body)


def _decision(ctx: typer.Context, fleet: str, reason: str, detail_type: DetailType) -> None:
    def body(world: World) -> None:
        world.fleet(fleet)
        held = reads.fleet_items(world, [fleet])[fleet].get("approval")
        if not isinstance(held, dict):
            raise CliError(f"{fleet} has no canary step awaiting approval")
        detail = _request(world, fleet, reason) | {"release_id": held["release"]}
        world.put(detail_type, detail)
        verb = "approved" if detail_type.endswith("Approved") else "rejected"
        out.print(f"release {held['release']}: canary step at {int(held['traffic'])}% {verb}")

    _run(ctx, body)


@app.command()
def approve(ctx: typer.Context, fleet: Fleet, reason: Reason) -> None:
    """Approve the fleet's canary step held for a person: the release goes on."""
    _decision(ctx, fleet, reason, "Canary Step Approved")


@app.command()
def reject(ctx: typer.Context, fleet: Fleet, reason: Reason) -> None:
    """Reject the fleet's canary step held for a person: the release rolls back."""
    _decision(ctx, fleet, reason, "Canary Step Rejected")


def _request(world: World, fleet: str, reason: str) -> dict[str, Any]:
    return {"fleet": fleet, "requested_by": world.caller, "reason": reason}


@app.command()
def watch(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(help="the release's id")],
    interval: Annotated[float, typer.Option(min=0.5, help="seconds between reads")] = 5.0,
    json: Json = False,
) -> None:
    """Follow a release to its end (exit code 0: succeeded; 1: rolled back or failed)."""

    def body(world: World) -> int:
        fleet = _fleet_of(world, release_id)
        shown = 0
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            console=out, disable=json or not out.is_terminal,
        ) as progress:  # fmt: skip
            task = progress.add_task(f"{release_id}: new AMI's traffic", total=100)
            while True:
                item = reads.release(world, fleet, release_id)
                steps = item.get("steps") or []
                for step in steps[shown:]:
                    if json:
                        render.as_json(out, step)
                    else:
                        progress.console.print(render.step_line(step))
                    if "traffic" in step:
                        progress.update(task, completed=float(step["traffic"]))
                shown = len(steps)
                outcome = item.get("outcome")
                if outcome and outcome != "in progress":
                    break
                time.sleep(interval)
        ended = {"release": release_id, "outcome": outcome, "reason": item.get("reason") or None}
        if json:
            render.as_json(out, ended)
        else:
            out.print(
                f"{release_id}: {outcome}" + (f" ({ended['reason']})" if ended["reason"] else "")
            )
        return 0 if outcome == "succeeded" else 1

    _run(ctx, body)


def _fleet_of(world: World, release_id: str) -> str:
    """The fleet a release id names: `<fleet>-...`, or `rollback-<id>` of one."""
    name = release_id
    while name.startswith("rollback-"):
        name = name.removeprefix("rollback-")
    owners = [f for f in world.fleets if name.startswith(f"{f}-")]
    if not owners or not reads.release(world, max(owners, key=len), release_id):
        raise CliError(f"no release {release_id!r} in {world.environment.name}")
    return max(owners, key=len)


def main() -> None:
    app(prog_name="phoenix")


if __name__ == "__main__":
    main()
