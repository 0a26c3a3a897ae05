"""Run the rehearsal and print its timeline: `python -m local.rehearsal.run`."""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from local import clock, scheduler
from local.api_calls import recording
from local.embedded import Baked, EmbeddedAws
from local.fleet_view import FleetView, release_item, states_entered
from local.rehearsal import (
    CONFIG_DIR,
    Rehearsal,
    Scenario,
    critical_path,
    deploy,
    watch_timeline,
    waves,
)
from local.rehearsal import report as html_report
from local.rehearsal.samples import Sampler

ROLLBACK_FUNCTION = "ReleaseRollback"  # the rollback function's name contains this


def _bake(rehearsal: Rehearsal, pipeline: str, version: str, health: str) -> Baked:
    rehearsal.note(f"bake {version} ({health})", f"pipeline {pipeline}")
    baked = rehearsal.aws.bake(pipeline=pipeline, version=version, health=health)
    rehearsal.baked(version, [baked.ami, *baked.amis.values()])
    rehearsal.aws.settle()
    return baked


@dataclass(frozen=True)
class Released:
    """A bake's release to one fleet, once settled: its execution, ledger item and the
    fleet as it then serves."""

    execution: dict[str, Any]
    release: dict[str, Any]
    view: FleetView


def _released(
    rehearsal: Rehearsal, fleet: str, pipeline: str, version: str, health: str
) -> Released:
    _bake(rehearsal, pipeline, version, health)
    aws = rehearsal.aws
    execution = _latest(aws, fleet)
    return Released(
        execution, release_item(aws, fleet, str(execution["name"])), FleetView.read(aws, fleet)
    )


def _latest(aws: EmbeddedAws, fleet: str) -> dict[str, object]:
    executions = [e for e in aws.executions().values() if e["name"].startswith(f"{fleet}-")]
    return max(executions, key=lambda e: e["startDate"])


def _timed(rehearsal: Rehearsal, scenario: Scenario, body: Callable[[], None]) -> None:
    began = time.perf_counter()
    with recording() as calls:
        body()
    scenario.real_seconds = time.perf_counter() - began
    scenario.simulated_minutes = (clock.elapsed() - scenario.began) / 60
    path, restored = critical_path(calls, ROLLBACK_FUNCTION)
    if restored is not None:
        scenario.critical_path = path
        if rehearsal.alarm_at is not None:
            scenario.time_to_rollback = restored - rehearsal.alarm_at


def judged_canary(aws: EmbeddedAws, rehearsal: Rehearsal) -> None:
    """A flaky AMI: 2% 5xx, under the alarms' threshold; the judgment fails it."""
    scenario = rehearsal.scenarios[-1]
    aws.advance(300)
    done = _released(rehearsal, "web", "golden", "3.1.0", "flaky")
    execution, release, view = done.execution, done.release, done.view
    v2 = rehearsal.amis["v2"]
    reason = str(release.get("reason", ""))
    rehearsal.note("web: the release's reason", reason[:160])
    scenario.check("no alarm fired", rehearsal.alarm_at is None)
    scenario.check("the release failed", execution["status"] == "FAILED")
    scenario.check("failed by the canary judgment", "canary judgment fail" in reason)
    scenario.check("the reason names the 5xx rate", "5xx rate fail" in reason)
    scenario.check("web serves v2 only, all traffic", view.serving_amis == {v2})
    scenario.check("nothing left scaled up", view.idle_desired == 0)


def held_canary(aws: EmbeddedAws, rehearsal: Rehearsal) -> None:
    """A cart AMI: every request served well, a fifth of the checkouts failing. Only the
    failed-checkouts metric fails its judgment, so the step is marginal; web holds it
    for a person, who rejects it."""
    scenario = rehearsal.scenarios[-1]
    v2 = rehearsal.amis["v2"]
    rehearsal.note("bake 3.3.0 (cart)", "pipeline golden")
    baked = aws.bake(pipeline="golden", version="3.3.0", health="cart")
    rehearsal.baked("3.3.0", [baked.ami, *baked.amis.values()])
    held = aws.held_step("web")
    rehearsal.note("web: holds for a person", str(held["judgment"])[:90])
    decision = {"fleet": "web", "release_id": held["release"], "requested_by": "on-call"}
    aws.put("Canary Step Rejected", {**decision, "reason": "checkouts fail on the new AMI"})
    rehearsal.note("web: rejected by on-call", "checkouts fail on the new AMI")
    aws.settle()
    execution = _latest(aws, "web")
    release = release_item(aws, "web", str(execution["name"]))
    view = FleetView.read(aws, "web")
    scenario.check("no alarm fired", rehearsal.alarm_at is None)
    scenario.check("the step was held at 5%", held["traffic"] == 5)
    scenario.check("held for failed checkouts", "failed checkouts fail" in held["judgment"])
    scenario.check("the release failed", execution["status"] == "FAILED")
    scenario.check("rolled back on the rejection", "rejected by on-call" in release["reason"])
    scenario.check("web serves v2 only, all traffic", view.serving_amis == {v2})
    scenario.check("nothing left scaled up", view.idle_desired == 0)


def hooked_blue_green(aws: EmbeddedAws, rehearsal: Rehearsal) -> None:
    """An erroring AMI for api: healthy to the load balancer, but its smoke test (the
    pre-traffic hook) fails it before any traffic moves."""
    scenario = rehearsal.scenarios[-1]
    before = FleetView.read(aws, "api").pointer
    done = _released(rehearsal, "api", "services", "3.2.0", "erroring")
    execution, release, view = done.execution, done.release, done.view
    entered = states_entered(aws, str(execution["executionArn"]))
    reason = str(release.get("reason", ""))
    rehearsal.note("api: the release's reason", reason[:160])
    scenario.check("the release failed", execution["status"] == "FAILED")
    scenario.check("failed by the pre-traffic hook", "pre-traffic hook" in reason)
    scenario.check("no traffic ever moved to the new slot", "ShiftTraffic" not in entered)
    scenario.check("api serves its previous AMI, all traffic", view.serving_amis == {before})
    scenario.check("nothing left scaled up", view.idle_desired == 0)


def run(aws: EmbeddedAws, rehearsal: Rehearsal, sampler: Sampler) -> None:
    def healthy_canary() -> None:
        scenario = rehearsal.scenarios[-1]
        v2 = _bake(rehearsal, "golden", "2.0.0", "healthy")
        execution = _latest(aws, "web")
        view = FleetView.read(aws, "web")
        scenario.check("the release succeeded", execution["status"] == "SUCCEEDED")
        scenario.check("web serves v2 only, all traffic", view.serving_amis == {v2.ami})
        scenario.check("the pointer is v2", view.pointer == v2.ami)
        rehearsal.amis["v2"] = v2.ami

    def bad_canary() -> None:
        scenario = rehearsal.scenarios[-1]
        aws.advance(300)
        done = _released(rehearsal, "web", "golden", "3.0.0", "erroring")
        execution, release, view = done.execution, done.release, done.view
        v2 = rehearsal.amis["v2"]
        scenario.check("the release was stopped", execution["status"] == "ABORTED")
        scenario.check("recorded as rolled back by an alarm", release["reason"].startswith("alarm"))
        scenario.check("web serves v2 only, all traffic", view.serving_amis == {v2})
        scenario.check("nothing left scaled up", view.idle_desired == 0)

    def blue_green_window() -> None:
        scenario = rehearsal.scenarios[-1]
        before = FleetView.read(aws, "api").pointer
        done = _released(rehearsal, "api", "services", "4.0.0", "degrading")
        execution, release, view = done.execution, done.release, done.view
        scenario.check("the release succeeded first", execution["status"] == "SUCCEEDED")
        scenario.check("then recorded as rolled back", release["outcome"] == "rolled back")
        scenario.check("api serves its previous AMI, all traffic", view.serving_amis == {before})
        scenario.check("the pointer is back", view.pointer == before)
        scenario.check("nothing left scaled up", view.idle_desired == 0)

    def plan() -> None:
        waves.plan_halts_on_a_bad_fleet(aws, rehearsal, rehearsal.scenarios[-1])

    sandbox, plan_environment = "sandbox", waves.ENVIRONMENT
    for name, body, environment in (
        ("v2: canary release to web", healthy_canary, sandbox),
        ("v3: bad canary, alarm, rollback", bad_canary, sandbox),
        (
            "v3.1: flaky canary, failed by the judgment",
            lambda: judged_canary(aws, rehearsal),
            sandbox,
        ),
        (
            "v3.2: blue_green, bad AMI stopped by its smoke test",
            lambda: hooked_blue_green(aws, rehearsal),
            sandbox,
        ),
        ("v3.3: marginal canary, held, rejected", lambda: held_canary(aws, rehearsal), sandbox),
        ("v4: blue_green, alarm in the window", blue_green_window, sandbox),
        ("v5: a plan, 6 fleets, 3 waves, 2 regions", plan, plan_environment),
    ):
        scenario = rehearsal.scenario(name, environment)
        sampler.environment = environment
        _timed(rehearsal, scenario, body)
    # All along, each region's drift check ran on its hourly schedule (docs/hygiene.md):
    # fleets that only releases and rollbacks changed have not drifted.
    checks = rehearsal.scenario("hourly drift checks, all along", plan_environment)
    drifted = [m for m in rehearsal.moments if m.what.endswith("Fleet Drift Detected")]
    checks.check(f"the drift check ran ({len(scheduler.runs)} runs)", len(scheduler.runs) >= 3)
    checks.check("no fleet drifted", not drifted)
    rehearsal.finish()


def report(console: Console, rehearsal: Rehearsal) -> bool:
    timeline = Table(title="phoenix rehearsal: timeline", show_lines=False)
    for column in ("scenario", "sim. time", "real s", "what", "detail"):
        timeline.add_column(column)
    shown = ""
    for moment in rehearsal.moments:
        minutes = moment.simulated / 60
        timeline.add_row(
            moment.scenario if moment.scenario != shown else "",
            f"{int(minutes // 60):02d}:{int(minutes % 60):02d}",
            f"{moment.real:6.1f}",
            moment.what,
            moment.detail,
        )
        shown = moment.scenario
    console.print(timeline)
    summary = Table(title="summary")
    for column in ("scenario", "real s", "sim. min", "rollback critical path", "alarm to traffic"):
        summary.add_column(column)
    passed = True
    for scenario in rehearsal.scenarios:
        path = " -> ".join(a.split(":")[1] for a in scenario.critical_path)
        calls = f"{len(scenario.critical_path)} calls: {path}" if scenario.critical_path else "-"
        restore = (
            f"{scenario.time_to_rollback:.2f} s" if scenario.time_to_rollback is not None else "-"
        )
        summary.add_row(
            scenario.name,
            f"{scenario.real_seconds:.1f}",
            f"{scenario.simulated_minutes:.0f}",
            calls,
            restore,
        )
    console.print(summary)
    if rehearsal.plan_view:
        fleets = Table(title="the plan's fleets: what each serves")
        for column in ("fleet", *sorted({region for _, region in rehearsal.plan_view})):
            fleets.add_column(column)
        for fleet in sorted({fleet for fleet, _ in rehearsal.plan_view}):
            regions = sorted({region for _, region in rehearsal.plan_view})
            fleets.add_row(fleet, *(rehearsal.plan_view[(fleet, region)] for region in regions))
        console.print(fleets)
    for scenario in rehearsal.scenarios:
        for what, holds in scenario.checks:
            passed &= holds
            mark = "[green]ok[/green]" if holds else "[red]FAILED[/red]"
            console.print(f"  {mark}  {scenario.name}: {what}")
    return passed


def _into(log: TextIO) -> None:
    """moto's own log lines (an execution's failure, which the ledger records too; a
    resource type its CloudFormation skips) and library warnings go to the handlers' log
    file as well, so the terminal shows the timeline alone."""
    handler = logging.StreamHandler(log)
    logging.captureWarnings(True)
    for name in ("moto", "py.warnings"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False


def main() -> int:
    console = Console(width=max(120, Console().width), file=sys.stdout)
    started = time.perf_counter()
    # The handlers' JSON logs and metrics (Powertools writes them to stdout) go to a file,
    # so the timeline stays readable.
    logs = Path(tempfile.mkdtemp(prefix="phoenix-rehearsal-")) / "handlers.log"
    with logs.open("w") as log, contextlib.redirect_stdout(log), EmbeddedAws() as aws:
        _into(log)
        rehearsal = Rehearsal(aws)
        console.print("phoenix: deploying the rehearsal environment into the embedded AWS...")
        stacks = deploy(aws)
        took = time.perf_counter() - started
        console.print(f"phoenix: deployed {', '.join(stacks)} in {took:.1f} s")
        watch_timeline(aws, rehearsal)
        sampler = Sampler(CONFIG_DIR, ["sandbox", waves.ENVIRONMENT])
        unwatch = clock.watch(sampler)
        try:
            run(aws, rehearsal, sampler)
        finally:
            unwatch()
        passed = report(console, rehearsal)
        page = html_report.write(rehearsal, sampler, logs.parent / "report.html")
    verdict = "passed" if passed else "FAILED"
    console.print(f"phoenix: handler logs in {logs}")
    console.print(f"phoenix: report (open in a browser) {page}")
    console.print(f"phoenix: rehearsal {verdict} in {time.perf_counter() - started:.1f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
