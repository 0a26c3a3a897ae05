"""The rehearsal `make demo` runs: releases and rollbacks in the embedded AWS.

1. bake v2 (healthy) -> canary release to `web` -> success;
2. bake v3 (errors on half its requests, passes health checks) -> canary step 1 ->
   the slot's 5xx alarm -> automatic rollback -> `web` back on v2;
3. bake v4 (degrades after its release) -> blue_green release to `api` -> success ->
   an alarm inside the rollback window -> traffic back on the warm old slot;
4. bake v5 (slow) for the `waves` environment -> its release plan: `web` alone, then
   `api` and `worker` -> `api` rolls back -> the plan halts before the disaster recovery
   region's wave -> abandoned by a `Plan Abandon Requested` event (waves.py).
Each scenario checks what must hold; the run exits non-zero if anything did not.
The environments are local/rehearsal/sandbox.yaml and waves.yaml; run.py prints what
happened.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import clock, eventbridge
from local.api_calls import CallLog, recording
from local.embedded import EmbeddedAws

CONFIG_DIR = Path(__file__).resolve().parent
TIMELINE_RULE = "phoenix-rehearsal-timeline"
TIMELINE_PATTERN = {
    "$or": [
        {"source": ["phoenix"]},
        {"source": ["aws.cloudwatch"], "detail": {"state": {"value": ["ALARM"]}}},
    ]
}


@dataclass
class Moment:
    """One line of the timeline."""

    scenario: str
    simulated: float  # simulated seconds since the rehearsal began
    real: float  # real seconds since the rehearsal began
    what: str
    detail: str = ""


@dataclass
class Scenario:
    name: str
    real_seconds: float = 0.0
    simulated_minutes: float = 0.0
    checks: list[tuple[str, bool]] = field(default_factory=list)
    critical_path: list[str] = field(default_factory=list)
    time_to_rollback: float | None = None

    def check(self, what: str, holds: bool) -> None:
        self.checks.append((what, holds))


@dataclass
class Rehearsal:
    aws: EmbeddedAws
    began: float = field(default_factory=time.perf_counter)
    moments: list[Moment] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)
    current: str = "set-up"
    alarm_at: float | None = None
    amis: dict[str, str] = field(default_factory=dict)  # by version, as baked
    # What each fleet of the plan's environment serves at the end: (fleet, region) -> AMIs.
    plan_view: dict[tuple[str, str], str] = field(default_factory=dict)

    # -- the timeline --------------------------------------------------------------------

    def note(self, what: str, detail: str = "") -> None:
        self.moments.append(
            Moment(self.current, clock.elapsed(), time.perf_counter() - self.began, what, detail)
        )

    def on_event(self, event: dict[str, Any]) -> None:
        detail = event.get("detail", {})
        kind = str(event.get("detail-type"))
        if event.get("source") == "aws.cloudwatch":
            self.alarm_at = self.alarm_at or time.perf_counter()
            self.note("alarm in ALARM", str(detail.get("alarmName")))
            return
        if kind.startswith("Plan "):
            what = detail.get("wave") or detail.get("status") or ""
            self.note(f"plan {detail.get('plan')}: {kind}", str(detail.get("reason", what))[:90])
            return
        if kind == "Release Step Completed":
            extra = f" ({detail['traffic']}% of traffic)" if "traffic" in detail else ""
            judged = f"{detail['outcome']}, score {detail['score']:g}" if "score" in detail else ""
            self.note(f"{detail.get('fleet')}: {detail.get('step')}{extra}", judged)
        elif kind in {"Release Rolled Back", "Release Failed", "Release Rejected"}:
            self.note(f"{detail.get('fleet')}: {kind}", str(detail.get("reason", ""))[:90])
        else:
            self.note(f"{detail.get('fleet')}: {kind}", str(detail.get("to_ami", "")))

    # -- scenarios -----------------------------------------------------------------------

    def scenario(self, name: str) -> Scenario:
        self.current = name
        self.alarm_at = None
        found = Scenario(name)
        self.scenarios.append(found)
        return found


def critical_path(calls: CallLog, handler_prefix: str) -> tuple[list[str], float | None]:
    """The rollback function's calls up to the one that restores traffic, and when."""
    path: list[str] = []
    for when, function, action in calls.sequence:
        if handler_prefix not in function:
            continue
        path.append(action)
        if action.endswith(("ModifyListener", "RollbackInstanceRefresh")):
            return path, when
    return path, None


def deploy(aws: EmbeddedAws) -> list[str]:
    """Both environments of the rehearsal, in one synthesis and one deploy."""
    outdir = Path(tempfile.mkdtemp(prefix="phoenix-rehearsal-"))
    return aws.deploy("sandbox,waves", outdir=outdir / "cdk.out", config_dir=CONFIG_DIR)


def watch_timeline(aws: EmbeddedAws, rehearsal: Rehearsal) -> None:
    """A rule the timeline reads every matching event from (its target: a queue)."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=TIMELINE_RULE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = aws.client("events")
    events.put_rule(Name=TIMELINE_RULE, EventPattern=json.dumps(TIMELINE_PATTERN))
    events.put_targets(Rule=TIMELINE_RULE, Targets=[{"Id": "timeline", "Arn": arn}])
    eventbridge.tap(TIMELINE_RULE, rehearsal.on_event)


__all__ = ["Rehearsal", "Scenario", "critical_path", "deploy", "recording", "watch_timeline"]
