"""Faults at every call that changes state, and what a fleet must keep through them.

`injection_points` is generated, not written: a scenario (a release of each strategy, a
release rolled back by its alarm, one rolled back by its own gate) runs once without a
fault while every call the handlers make is recorded; each call that changes state and
that the function's declared calls list (phoenix/release/spec.py STEP_CALLS, the
rollback function's ROLLBACK_*_CALLS, or any other phoenix function's role, which the
grant tests hold to its code) is a point. A new call is covered without editing this.

`run` releases with one fault armed at one point (local/faults.py) and returns what broke
of `invariants`:
- the release ended: no execution runs, the fleet's lock is free;
- every serving instance runs the pointer AMI; the listener's weights sum to 100 and
  point only at slots with running, healthy instances;
- serving capacity never fell below the fleet's minimum healthy while it ran;
- the release's ledger item is closed with its outcome;
- the rollback window has passed (it is a wait in the release's execution) and nothing
  stays scaled up in the idle slot;
- no event was lost: each delivery and asynchronous invocation either succeeded or went
  to the undelivered events' queue (`lost_so_far` counts what was dropped).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.elbv2.models import elbv2_backends

from local import clock, eventbridge_retries, lambda_dispatch
from local.api_calls import CallLog, recording
from local.application import instance_health
from local.embedded import ACCOUNT, REGION, EmbeddedAws
from local.faults import CLIENT_ATTEMPTS, Fault, Kind, armed
from local.fleet_view import FleetView, closed, ledger_item
from local.iam import role_policies

# The verbs of calls that read; every other call changes state. DetectStackDrift reads
# too: it starts CloudFormation's comparison of a stack with its template and changes no
# resource (the Service Authorization Reference lists it at the Read access level).
_READS = ("Describe", "Get", "List", "BatchGet", "Query", "Scan", "Detect")
_versions = itertools.count(1)
# Lambda's two retries of a failed asynchronous invocation come within three minutes.
ASYNC_RETRIES = sum(lambda_dispatch.ASYNC_RETRY_DELAYS)


@dataclass(frozen=True)
class Scenario:
    name: str
    fleet: str
    health: str  # the baked image: healthy, failing (health checks), erroring (5xx)
    strategy: str


SCENARIOS = (
    Scenario("canary release", "web", "healthy", "canary"),
    Scenario("blue_green release", "api", "healthy", "blue_green"),
    Scenario("rolling release", "worker", "healthy", "rolling"),
    Scenario("canary rolled back by its alarm", "web", "erroring", "canary"),
    Scenario("blue_green rolled back by its gate", "api", "failing", "blue_green"),
    Scenario("rolling rolled back by its alarm", "worker", "erroring", "rolling"),
)
# Each fleet of tests/integration/config keeps 2 instances serving (2 desired, 100%
# minimum healthy).
REQUIRED_SERVING = 2


def lost_so_far() -> int:
    """Events lost so far: asynchronous invocations Lambda dropped after its retries, and
    deliveries EventBridge dropped after its own (neither had a queue to go to)."""
    return len(lambda_dispatch.lost) + len(eventbridge_retries.dropped)


def changes_state(action: str) -> bool:
    return not action.split(":", 1)[1].startswith(_READS)


@dataclass(frozen=True)
class Point:
    """One call that changes state, by one function (its handler names it)."""

    handler: str
    function: str
    action: str

    def __str__(self) -> str:
        step = self.handler.removeprefix("phoenix.").removesuffix(".lambda_handler")
        return f"{step} {self.action}"


@dataclass
class Outcome:
    scenario: str
    point: Point | None
    kind: Kind | None
    served: int = 0
    status: str = ""
    violations: list[str] = field(default_factory=list)
    lost: int = 0

    @property
    def survived(self) -> bool:
        return not self.violations


def serving_capacity(fleet: str, environment: str = "sandbox") -> int:
    """Healthy running instances in the fleet's slots that get traffic, read straight from
    moto's backends (it runs inside the embedded AWS, between steps)."""
    groups = {
        name: group
        for name, group in autoscaling_backends[ACCOUNT][REGION].autoscaling_groups.items()
        if name.startswith(f"phoenix-{environment}-{fleet}-")
    }
    group_of = {arn: g for g in groups.values() for arn in g.target_group_arns}
    serving = 0
    for balancer in list(elbv2_backends[ACCOUNT][REGION].load_balancers.values()):
        for listener in list(balancer.listeners.values()):
            for action in listener.default_actions:
                targets = action.data.get("ForwardConfig", {}).get("TargetGroups", [])
                if action.data.get("TargetGroupArn"):
                    targets = [{"TargetGroupArn": action.data["TargetGroupArn"], "Weight": 1}]
                for target in targets:
                    group = group_of.get(target["TargetGroupArn"])
                    if group is None or int(target.get("Weight", 1)) == 0:
                        continue
                    for state in group.active_instances():
                        health = instance_health(ACCOUNT, REGION, state.instance.id)
                        serving += health is not None and health != "failing"
    return serving


@dataclass
class CapacityWatch:
    """Serving capacity all through a release, seen after every simulated minute and
    every handler invocation."""

    fleet: str
    required: int = REQUIRED_SERVING
    seen: list[int] = field(default_factory=list)

    @property
    def lowest(self) -> int:
        return min(self.seen)

    def __enter__(self) -> CapacityWatch:
        self._stop = clock.watch(self.look)
        self.look()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop()
        self.look()

    def look(self) -> None:
        self.seen.append(serving_capacity(self.fleet))


def _handlers(aws: EmbeddedAws) -> dict[str, str]:
    return {
        f["FunctionName"]: f["Handler"] for f in aws.client("lambda").list_functions()["Functions"]
    }


def _points(aws: EmbeddedAws, calls: CallLog, granted: dict[str, set[str]]) -> list[Point]:
    handlers = _handlers(aws)
    points = {
        Point(handlers[function], function, action)
        for (function, action) in calls.calls
        if changes_state(action) and action in granted.get(handlers.get(function, ""), set())
    }
    return sorted(points, key=str)


def granted_calls(aws: EmbeddedAws) -> dict[str, set[str]]:
    """What each deployed phoenix function's role allows, by handler: its declared calls
    (the grant tests hold each role to exactly what its code calls)."""
    found: dict[str, set[str]] = {}
    for function in aws.client("lambda").list_functions()["Functions"]:
        if not function["Handler"].startswith("phoenix."):
            continue
        actions = found.setdefault(function["Handler"], set())
        for document in role_policies(function["Role"]):
            parsed = json.loads(document) if isinstance(document, str) else document
            for statement in parsed["Statement"]:
                listed = statement["Action"]
                actions.update([listed] if isinstance(listed, str) else listed)
    return found


def release(
    aws: EmbeddedAws, scenario: Scenario, fault: Fault | None = None
) -> tuple[Outcome, CallLog]:
    """One release of `scenario` with `fault` armed (or none); the invariants checked."""
    aws.advance(300)  # an earlier rollback's alarms recover
    baked = aws.bake(
        pipeline="reliability", version=f"9.{next(_versions)}.0", health=scenario.health
    )
    lost_before = lost_so_far()
    outcome = Outcome(scenario.name, None, fault.kind if fault else None)
    with recording() as calls, CapacityWatch(scenario.fleet) as watch:
        if fault is None:
            execution = _request(aws, scenario.fleet, baked.ami)
        else:
            with armed(fault):
                execution = _request(aws, scenario.fleet, baked.ami)
            outcome.served = fault.served
    if execution is None:
        outcome.status = "NOT STARTED"
        outcome.violations.append("no release started for the image")
        return outcome, calls
    outcome.status = execution["status"]
    if watch.lowest < watch.required:
        outcome.violations.append(f"serving capacity fell to {watch.lowest}")
    outcome.violations += invariants(aws, scenario.fleet, execution["name"])
    outcome.lost = lost_so_far() - lost_before
    if outcome.lost:
        outcome.violations.append(f"{outcome.lost} events lost")
    return outcome, calls


def _request(aws: EmbeddedAws, fleet: str, ami: str) -> dict[str, Any] | None:
    """Request the release and wait for it to end; its execution. A trigger that failed is
    invoked again by Lambda a minute and then two later: simulated time passes for it."""
    before = set(aws.executions())
    aws.client("events").put_events(
        Entries=[
            {
                "Source": "phoenix",
                "DetailType": "Release Requested",
                "Detail": json.dumps({"fleet": fleet, "ami": ami, "requested_by": "faults"}),
            }
        ]
    )
    for _ in range(4):
        aws.settle()
        started = [e for arn, e in aws.executions().items() if arn not in before]
        if started:
            # Lambda runs a failed asynchronous invocation again a minute and then two
            # minutes later: the fleet is judged once those have run.
            aws.advance(ASYNC_RETRIES)
            aws.settle()
            (execution,) = [e for arn, e in aws.executions().items() if arn not in before]
            return execution
        aws.advance(60)
    return None


def invariants(aws: EmbeddedAws, fleet: str, release_id: str) -> list[str]:
    """What is wrong with `fleet` once its release `release_id` ended (empty: nothing)."""
    broken: list[str] = []
    if aws.running_releases():
        broken.append(f"executions still running: {aws.running_releases()}")
    view = FleetView.read(aws, fleet)
    if "lock_owner" in view.fleet_item:
        broken.append("the fleet's lock is held with no release running")
    if view.serving_amis != {view.pointer}:
        broken.append(f"serving {sorted(view.serving_amis)}, the pointer is {view.pointer}")
    if sum(view.weights.values()) != 100:
        broken.append(f"listener weights {view.weights} do not sum to 100")
    for slot, weight in view.weights.items():
        if weight > 0 and (view.desired_by_slot.get(slot, 0) == 0 or not view.amis_by_slot[slot]):
            broken.append(f"weight {weight} on slot {slot}, which has no instances")
    item = ledger_item(aws, f"FLEET#{fleet}", f"RELEASE#{release_id}")
    if not closed(item):
        broken.append(f"release {release_id} not closed in the ledger: {sorted(item)}")
    # The rollback window is a wait in the release's execution: it has passed.
    if view.idle_desired:
        broken.append(f"the idle slot still has {view.idle_desired} instances after the window")
    return broken


def injection_points(aws: EmbeddedAws) -> Iterator[tuple[Scenario, list[Point], Outcome]]:
    """Each scenario run once without a fault: the points it reaches, and how it went."""
    granted = granted_calls(aws)
    for scenario in SCENARIOS:
        outcome, calls = release(aws, scenario)
        yield scenario, _points(aws, calls, granted), outcome


def inject(aws: EmbeddedAws, scenario: Scenario, point: Point, kind: Kind) -> Outcome:
    outcome, _ = release(aws, scenario, fault_at(point.function, point.action, kind))
    outcome.point = point
    return outcome


def fault_at(function: str, action: str, kind: Kind) -> Fault:
    """A fault of `kind` at `function`'s next `action`: throttling and a 5xx on every
    attempt its client makes (the handler sees the error), the others once."""
    times = CLIENT_ATTEMPTS if kind in {Kind.THROTTLED, Kind.SERVER_ERROR} else 1
    return Fault(action, kind, times=times, function=function)


def describe(outcome: Outcome) -> dict[str, Any]:
    return {
        "scenario": outcome.scenario,
        "point": str(outcome.point),
        "kind": outcome.kind.value if outcome.kind else None,
        "served": outcome.served,
        "status": outcome.status,
        "violations": outcome.violations,
    }
