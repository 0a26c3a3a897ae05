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
from collections.abc import Callable, Iterable
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
    fleet: str = ""  # the fleet a phoenix event or an alarm names, with its region
    region: str = ""
    kind: str = ""  # alarm, gate, rollback, failure or release: a mark on the report's charts


@dataclass
class Scenario:
    name: str
    environment: str = "sandbox"
    began: float = 0.0  # simulated seconds since the rehearsal began
    ended: float = 0.0
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
    versions: dict[str, str] = field(default_factory=dict)  # by AMI (every region's copy)
    # What each fleet of the plan's environment serves at the end: (fleet, region) -> AMIs.
    plan_view: dict[tuple[str, str], str] = field(default_factory=dict)

    # -- the timeline --------------------------------------------------------------------

    def note(self, what: str, detail: str = "", **about: str) -> None:
        """A line of the timeline; `about` names its fleet, region and kind (Moment)."""
        self.moments.append(
            Moment(
                self.current,
                clock.elapsed(),
                time.perf_counter() - self.began,
                what,
                detail,
                **about,
            )
        )

    def baked(self, version: str, amis: Iterable[str]) -> None:
        """Name a bake's AMIs (in each region) by its version, as the report shows them."""
        self.versions.update(dict.fromkeys(amis, version))

    def on_event(self, event: dict[str, Any]) -> None:
        detail = event.get("detail", {})
        kind = str(event.get("detail-type"))
        region = str(event.get("region", ""))
        if event.get("source") == "aws.cloudwatch":
            self.alarm_at = self.alarm_at or time.perf_counter()
            # the report finds the alarm's fleet by the name (phoenix-<env>-<fleet>-...)
            self.note("alarm in ALARM", str(detail.get("alarmName")), region=region, kind="alarm")
            return
        if kind.startswith("Plan "):
            what = detail.get("wave") or detail.get("status") or ""
            self.note(f"plan {detail.get('plan')}: {kind}", str(detail.get("reason", what))[:90])
            return
        about = {"fleet": str(detail.get("fleet", "")), "region": region}
        if kind == "Release Step Completed":
            extra = f" ({detail['traffic']}% of traffic)" if "traffic" in detail else ""
            judged = f"{detail['outcome']}, score {detail['score']:g}" if "score" in detail else ""
            step = str(detail.get("step"))
            mark = "rollback" if step == "rolled back" else "gate" if _gate(step) else ""
            self.note(f"{detail.get('fleet')}: {step}{extra}", judged, **about, kind=mark)
        elif kind in {"Release Rolled Back", "Release Failed", "Release Rejected"}:
            mark = "rollback" if kind == "Release Rolled Back" else "failure"
            reason = str(detail.get("reason", ""))[:90]
            self.note(f"{detail.get('fleet')}: {kind}", reason, **about, kind=mark)
        else:
            to_ami = str(detail.get("to_ami", ""))
            self.note(f"{detail.get('fleet')}: {kind}", to_ami, **about, kind="release")

    # -- scenarios -----------------------------------------------------------------------

    def scenario(self, name: str, environment: str = "sandbox") -> Scenario:
        """A new scenario: the one before it ends now (simulated time), this one begins."""
        self.finish()
        self.current = name
        self.alarm_at = None
        found = Scenario(name, environment, began=clock.elapsed())
        self.scenarios.append(found)
        return found

    def finish(self) -> None:
        """The scenario in play ends now (simulated time)."""
        if self.scenarios:
            self.scenarios[-1].ended = clock.elapsed()


# The steps a release passes as a gate: what the report marks on its charts.
GATES = ("health gate", "canary judged", "pre-traffic tests", "approval awaited")


def _gate(step: str) -> bool:
    return step.startswith(GATES)


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


def watch_timeline(aws: EmbeddedAws, rehearsal: Rehearsal) -> Callable[[], None]:
    """A rule the timeline reads every matching event from (its target: a queue); returns
    what removes them."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=TIMELINE_RULE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = aws.client("events")
    events.put_rule(Name=TIMELINE_RULE, EventPattern=json.dumps(TIMELINE_PATTERN))
    events.put_targets(Rule=TIMELINE_RULE, Targets=[{"Id": "timeline", "Arn": arn}])
    untap = eventbridge.tap(TIMELINE_RULE, rehearsal.on_event)

    def stop() -> None:
        untap()
        events.remove_targets(Rule=TIMELINE_RULE, Ids=["timeline"])
        events.delete_rule(Name=TIMELINE_RULE)
        sqs.delete_queue(QueueUrl=url)

    return stop


__all__ = ["Rehearsal", "Scenario", "critical_path", "deploy", "recording", "watch_timeline"]
