"""phoenix's example pre-traffic hook: a smoke test run on each new instance.

A hook is invoked with the release's new targets before any traffic reaches them
(phoenix/release/runtime/pretraffic.py). This one asks each instance, through Systems
Manager Run Command (`AWS-RunShellScript`, one command per 50 instances; the instances
run the SSM agent, and a function outside the VPC could not reach them), to request its
own application `requests` times with curl, at `path` on the target's port, and passes
only when every instance's command succeeds: any answer other than 2xx or 3xx, or no
answer within 5 s, fails. It answers `{"passed": bool, "reason": str}`.

Input (the fleet's `pre_traffic_hook.input`): `path` (default `/`), `requests` (default
10, at most 100). A path is checked before it goes into the command: it is a shell word.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from phoenix.kernel.clients import Clients

if TYPE_CHECKING:
    from types_boto3_ssm.client import SSMClient

logger = Logger()
# An absolute URL path of unreserved characters only: nothing a shell would read.
_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
DONE = {"Success", "Failed", "Cancelled", "TimedOut", "Undeliverable", "Terminated"}
POLL_SECONDS = 2
# SendCommand takes at most 50 instance IDs (API reference, InstanceIds); the results
# are read a page of 50 at a time (ListCommandInvocations, MaxResults).
PER_COMMAND = 50


class BadInputError(ValueError):
    """The hook's input is not what it takes."""


def command_for(port: int, path: str, requests: int) -> str:
    """The shell command each instance runs: `requests` requests of its own application."""
    if not _PATH.match(path):
        raise BadInputError(f"path {path!r} is not an absolute path of unreserved characters")
    if not 1 <= requests <= 100:
        raise BadInputError(f"requests is {requests}, not 1 to 100")
    url = f"http://localhost:{port}{path}"
    return (
        f"for i in $(seq {requests}); do curl -fsS -o /dev/null --max-time 5 {url} || exit 1; done"
    )


def smoke_test(ssm: SSMClient, event: dict[str, Any], seconds_left: float) -> dict[str, Any]:
    """Run the command on every target's instance; pass when each succeeded."""
    targets = event.get("targets") or []
    given = event.get("input") or {}
    if not targets:
        return {"passed": False, "reason": "no instances to test"}
    try:
        requests = int(given.get("requests", "10"))
        command = command_for(int(targets[0].get("port") or 80), given.get("path", "/"), requests)
    except ValueError as bad:  # BadInputError, or a requests or port not a number
        return {"passed": False, "reason": f"bad input: {bad}"}
    instances = [str(t["id"]) for t in targets]
    commands = [
        ssm.send_command(
            InstanceIds=instances[first : first + PER_COMMAND],
            DocumentName="AWS-RunShellScript",
            Parameters={"commands": [command]},
            TimeoutSeconds=max(30, int(seconds_left)),
            Comment=f"phoenix smoke test of release {event.get('release')}",
        )["Command"]["CommandId"]
        for first in range(0, len(instances), PER_COMMAND)
    ]
    deadline = time.monotonic() + seconds_left
    outcomes: dict[str, dict[str, Any]] = {}
    while True:
        outcomes |= _finished(ssm, commands, set(instances))
        if len(outcomes) == len(instances) or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    failed = {i: o for i, o in outcomes.items() if o["Status"] != "Success"}
    unanswered = [i for i in instances if i not in outcomes]
    if unanswered:
        return {"passed": False, "reason": f"no result in time from {', '.join(unanswered)}"}
    if failed:
        shown = "; ".join(
            f"{i}: {o['Status']} (exit {_plugin(o).get('ResponseCode')}) "
            f"{str(_plugin(o).get('Output', '')).strip()[:120]}"
            for i, o in sorted(failed.items())
        )
        return {"passed": False, "reason": f"{len(failed)} of {len(instances)} failed: {shown}"}
    return {"passed": True, "reason": f"{len(instances)} instances answered {requests} requests"}


def _finished(
    ssm: SSMClient, commands: list[str], instances: set[str]
) -> dict[str, dict[str, Any]]:
    """Instance -> its invocation, for those of `instances` done: every page of each
    command's list, so the calls grow with pages of 50, not with instances."""
    done: dict[str, dict[str, Any]] = {}
    pages = ssm.get_paginator("list_command_invocations")
    for command_id in commands:
        for page in pages.paginate(CommandId=command_id, Details=True):
            for invocation in page["CommandInvocations"]:
                if invocation.get("Status") in DONE and invocation["InstanceId"] in instances:
                    done[str(invocation["InstanceId"])] = dict(invocation)
    return done


def _plugin(invocation: dict[str, Any]) -> dict[str, Any]:
    """The invocation's one plugin (AWS-RunShellScript has one: aws:runShellScript)."""
    plugins = invocation.get("CommandPlugins") or [{}]
    return dict(plugins[0])


@logger.inject_lambda_context
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {"passed": False, "reason": "the event is not an object"}
    # keep 10 s to answer in: the invoker waits no longer than the function runs
    seconds = context.get_remaining_time_in_millis() / 1000 - 10
    answer = smoke_test(Clients("").ssm, event, max(seconds, 1.0))
    logger.info("smoke test", extra={"release": event.get("release"), **answer})
    return answer
