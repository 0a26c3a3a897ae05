"""A stateful chaos test: random sequences of what happens to fleets, in the embedded AWS.

hypothesis draws each sequence from these steps: a bake of an image (healthy, failing its
health checks, or erroring) that a fleet's release picks up; an alarm of a fleet going
to ALARM; a rollback request; a pause and a resume; a fault armed at a call that changes
state (local/faults.py), met by whatever runs next; and time passing. Releases run while
the next steps happen: nothing waits for them to end. After every step:
- every serving instance runs the pointer AMI or the AMI of the release in flight;
- the listener's weights sum to 100 and, except while a canary step is in flight, point
  only at slots with instances;
- at most one release acts on a fleet at a time (from its preflight until its ledger
  item is closed), and it holds the fleet's lock; the lock is held only by a release
  that runs. (A request for a locked or paused fleet still starts an execution, which
  its preflight refuses, or queues when the fleet says so.)
When a sequence ends, time passes until every release has ended and the rollback windows
have passed; then the fleet serves the pointer AMI with all its traffic, nothing stays
scaled up, every release's ledger item is closed with its outcome, and no event was lost.

One deployed sandbox (tests/integration/config_chaos: the integration tests' fleets with short
bakes and windows) serves every sequence: each starts from where the last left the
fleets, which the invariants say is a serving fleet.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from contextlib import ExitStack
from itertools import count
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from local import clock, reliability
from local.embedded import ACCOUNT, REGION, EmbeddedAws
from local.faults import Fault, Kind, armed
from local.fleet_view import FleetView, closed, peek_item

CONFIG = Path(__file__).resolve().parent / "integration" / "config_chaos"
FLEETS = ("web", "api", "worker")
HEALTH = ("healthy", "failing", "erroring")
# Who a request names (every phoenix request must: an event without it is refused).
BY = {"requested_by": "chaos"}
_versions = count(1)


class World:
    """The embedded AWS every sequence runs in, deployed once."""

    def __init__(self, aws: EmbeddedAws, *, strict: bool = True) -> None:
        self.aws = aws
        # strict: a violation fails the sequence (a test); else it is counted (a benchmark)
        self.strict = strict
        self.broken_sequences = 0
        self.granted = reliability.granted_calls(aws)
        self.functions = {
            f["FunctionName"]: f["Handler"]
            for f in aws.client("lambda").list_functions()["Functions"]
            if f["Handler"].startswith("phoenix.")
        }
        self.points = sorted(
            (function, action)
            for function, handler in self.functions.items()
            if handler.startswith(("phoenix.release.", "phoenix.rollback."))
            for action in self.granted.get(handler, set())
            if reliability.changes_state(action)
            and not action.startswith(("logs:", "xray:", "kms:", "sqs:"))
            and action not in {"ec2:RunInstances", "iam:PassRole"}  # Auto Scaling's, not theirs
        )
        self.alarms = {
            fleet: [
                a["AlarmName"]
                for a in aws.client("cloudwatch").describe_alarms(
                    AlarmNamePrefix=f"phoenix-sandbox-{fleet}-"
                )["MetricAlarms"]
            ]
            for fleet in FLEETS
        }
        self.violations: list[str] = []
        self.sequences = 0
        # what the sequences did: steps by kind, releases by how they ended, faults met
        self.tally: Counter[str] = Counter()


def _put(aws: EmbeddedAws, detail_type: str, detail: dict[str, Any]) -> None:
    aws.client("events").put_events(
        Entries=[{"Source": "phoenix", "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )


def _running() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The release executions running, by fleet: (name, input), read from moto's backend
    (in this process, after every step)."""
    running: dict[str, list[tuple[str, dict[str, Any]]]] = {fleet: [] for fleet in FLEETS}
    for machine in list(stepfunctions_parser_backends[ACCOUNT][REGION].state_machines):
        for execution in list(machine.executions):
            if str(getattr(execution.status, "value", execution.status)) != "RUNNING":
                continue
            given = execution.execution_input
            data = json.loads(given) if isinstance(given, str) else dict(given or {})
            if data.get("fleet") in running:
                running[data["fleet"]].append((execution.name, data))
    return running


def _acting(fleet: str, release: str) -> bool:
    """Whether the release is past its preflight and its ledger item not yet closed: from
    then until it closes it, it changes the fleet, and must hold the lock. (A request
    for a locked or paused fleet still starts an execution, which its preflight refuses
    or, when the fleet says so, queues until the lock is free.)"""
    item = peek_item(f"FLEET#{fleet}", f"RELEASE#{release}")
    steps = [s["M"]["step"]["S"] for s in item.get("steps", {}).get("L", [])]
    return "preflight passed" in steps and not closed(item)


def in_flight_invariants(aws: EmbeddedAws) -> list[str]:
    """What is wrong while releases may run (empty: nothing)."""
    broken: list[str] = []
    running = _running()
    for fleet in FLEETS:
        view = FleetView.peek(fleet)
        executions = running[fleet]
        owner = view.fleet_item.get("lock_owner", {}).get("S")
        names = {name for name, _ in executions}
        if owner is not None and owner not in names:
            broken.append(f"{fleet}: the lock is held by {owner}, which does not run")
        acting = sorted(name for name in names if _acting(fleet, name))
        if len(acting) > 1:
            broken.append(f"{fleet}: {len(acting)} releases act at once: {acting}")
        for name in set(acting) - {owner}:
            broken.append(f"{fleet}: release {name} acts without the lock")
        flying = {data.get("ami") for _, data in executions} - {None}
        allowed = {view.pointer} | flying
        if not view.serving_amis <= allowed:
            broken.append(f"{fleet}: serving {sorted(view.serving_amis)}, allowed {allowed}")
        if sum(view.weights.values()) != 100:
            broken.append(f"{fleet}: weights {view.weights} do not sum to 100")
        if not executions:
            for slot, weight in view.weights.items():
                if weight and not view.amis_by_slot[slot]:
                    broken.append(f"{fleet}: weight {weight} on empty slot {slot}")
    return broken


def settled_invariants(aws: EmbeddedAws, releases: list[str]) -> list[str]:
    """What is wrong once every release ended and the windows passed."""
    broken = in_flight_invariants(aws)
    for fleet in FLEETS:
        view = FleetView.peek(fleet)
        if view.serving_amis != {view.pointer}:
            broken.append(f"{fleet}: serving {sorted(view.serving_amis)} after the window")
        if view.idle_desired:
            broken.append(f"{fleet}: {view.idle_desired} instances idle after the window")
    for name in releases:
        fleet = name.split("-", 1)[0]
        item = peek_item(f"FLEET#{fleet}", f"RELEASE#{name}")
        if item and not closed(item):
            broken.append(f"release {name} not closed in the ledger")
    return broken


class FleetChaos(RuleBasedStateMachine):
    world: World

    def __init__(self) -> None:
        super().__init__()
        self.aws = self.world.aws
        self.before = set(self.aws.executions())
        self.lost_before = reliability.lost_so_far()
        self.faults = ExitStack()
        self.armed: list[Fault] = []
        self.paused: set[str] = set()
        self.broken = False
        self.world.sequences += 1

    @rule(fleet=st.sampled_from(FLEETS), health=st.sampled_from(HEALTH))
    def bake(self, fleet: str, health: str) -> None:
        self.world.tally[f"step: bake {health}"] += 1
        baked = self.aws.bake(pipeline="chaos", version=f"7.{next(_versions)}.0", health=health)
        _put(self.aws, "Release Requested", {"fleet": fleet, "ami": baked.ami, **BY})
        self.aws.drain()

    @rule(fleet=st.sampled_from(FLEETS), which=st.integers(0, 10))
    def alarm(self, fleet: str, which: int) -> None:
        self.world.tally["step: alarm"] += 1
        names = self.world.alarms[fleet]
        self.aws.client("cloudwatch").set_alarm_state(
            AlarmName=names[which % len(names)], StateValue="ALARM", StateReason="chaos"
        )
        self.aws.drain()

    @rule(fleet=st.sampled_from(FLEETS))
    def rollback_request(self, fleet: str) -> None:
        self.world.tally["step: rollback request"] += 1
        _put(self.aws, "Rollback Requested", {"fleet": fleet, "reason": "chaos", **BY})
        self.aws.drain()

    @rule(fleet=st.sampled_from(FLEETS), resume=st.booleans())
    def pause_or_resume(self, fleet: str, resume: bool) -> None:
        kind = "Releases Resumed" if resume else "Releases Paused"
        (self.paused.discard if resume else self.paused.add)(fleet)
        self.world.tally[f"step: {kind.lower()}"] += 1
        _put(self.aws, kind, {"fleet": fleet, "reason": "chaos", **BY})
        self.aws.drain()

    @rule(which=st.integers(0, 10_000), kind=st.sampled_from(list(Kind)))
    def fault(self, which: int, kind: Kind) -> None:
        self.world.tally["step: fault armed"] += 1
        function, action = self.world.points[which % len(self.world.points)]
        fault = self.faults.enter_context(armed(reliability.fault_at(function, action, kind)))
        self.armed.append(fault)

    @rule(minutes=st.integers(1, 15))
    def time_passes(self, minutes: int) -> None:
        self.world.tally["step: time passes"] += 1
        self.aws.advance(minutes * 60.0)
        self.aws.drain()

    @invariant()
    def fleets_serve(self) -> None:
        self._found(in_flight_invariants(self.aws))

    def _found(self, broken: list[str]) -> None:
        if not broken:
            return
        if not self.broken:
            self.world.broken_sequences += 1
        self.broken = True
        self.world.violations += broken
        assert not (broken and self.world.strict), broken

    def teardown(self) -> None:
        # Resume what the sequence paused; let every release end (its rollback window is a
        # wait in its execution: when none runs, every window has passed).
        for fleet in sorted(self.paused):
            _put(self.aws, "Releases Resumed", {"fleet": fleet, "reason": "chaos ends", **BY})
        self.aws.settle()
        # Lambda's and EventBridge's retries of what failed run, and what they start
        if clock.scheduled():
            self.aws.advance(reliability.ASYNC_RETRIES)
            self.aws.settle()
        self.faults.close()  # armed until the sequence's releases have ended
        started = [e for a, e in self.aws.executions().items() if a not in self.before]
        releases = [e["name"] for e in started]
        self.world.tally.update(f"release {e['status'].lower()}" for e in started)
        self.world.tally["faults met"] += sum(bool(f.served) for f in self.armed)
        broken = settled_invariants(self.aws, releases)
        lost = reliability.lost_so_far() - self.lost_before
        if lost:
            broken.append(f"{lost} events lost")
        self._found(broken)


def run_sequences(sequences: int, steps: int = 4) -> World:
    """Deploy the sandbox and run `sequences` random sequences of at most `steps` steps,
    counting violations instead of stopping at the first."""
    with tempfile.TemporaryDirectory() as scratch, EmbeddedAws() as aws:
        aws.deploy("sandbox", outdir=Path(scratch) / "cdk.out", config_dir=CONFIG)
        world = World(aws, strict=False)
        run_in(world, sequences, steps)
        return world


def run_in(world: World, sequences: int, steps: int = 4) -> None:
    """`sequences` sequences in `world`, drawn from a fixed seed (derandomized)."""
    FleetChaos.world = world
    run_state_machine_as_test(
        FleetChaos,
        settings=settings(
            max_examples=sequences,
            stateful_step_count=steps,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
