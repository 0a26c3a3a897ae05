"""The drift check: what each fleet runs, against what the release controller says it
should (docs/hygiene.md).

Per fleet, from the fleet registry, the controller-owned parameters, the ledger's fleet
item and what AWS describes (phoenix/kernel/observed.py, batched, so the calls are
constant in instances):
- an instance on an AMI other than the pointer's (or, while a release holds the fleet,
  the AMI it releases; inside a rollback window, the old slot's previous AMI; while a
  rollback drill holds it, the drill's AMI in its slot);
- a group on another launch template version than the controller's;
- a listener weight, or a group's minimum size, other than the controller's, or an idle
  slot (weight 0) with instances once its rollback window is over;
- a resource of the fleet's stack that differs from its template (phoenix/drift/runtime/
  stacks.py: CloudFormation's drift detection).
While a release holds the fleet only the AMIs and the stack are checked: the release is
moving the rest.
Each fleet with findings gets a `Fleet Drift Detected` event. A fleet whose config says
`drift: remediate`, free and not paused, also gets a `Release Requested` of its pointer
AMI: the normal release path replaces what drifted, with its gates and rollback. A stack
resource's drift is only told of: a release does not change what the stack deploys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from aws_lambda_powertools import Logger

from phoenix.drift.runtime import stacks
from phoenix.kernel import clock, events, observed
from phoenix.kernel.clients import Clients
from phoenix.kernel.names import SlotSetting, release_pointer, slot_parameter
from phoenix.kernel.registry import read_parameters, read_registry
from phoenix.kernel.settings import ReleaseSettings

logger = Logger(child=True)
# An event carries this many findings at most (the rest are counted): PutEvents entries
# are at most 256 KB (EventBridge API reference, PutEvents).
FINDINGS_PER_EVENT = 20
REQUESTED_BY = "phoenix drift check"
RETIRE_GRACE = timedelta(minutes=10)
SETTINGS: tuple[SlotSetting, ...] = ("weight", "launch-template-version", "min-size")

Kind = Literal[
    "instance AMI", "launch template version", "weight", "min size", "idle capacity",
    "stack resource",
]  # fmt: skip
# What a release puts right: all but a stack resource (a stack update, or undoing the
# change by hand, does).
RELEASABLE = frozenset(get_args(Kind)) - {"stack resource"}


class DriftSettings(ReleaseSettings):
    """The drift check's settings: the environment and its ledger table."""


@dataclass(frozen=True)
class Finding:
    kind: Kind
    slot: str
    found: str
    expected: str
    resource: str = ""

    def text(self) -> str:
        where = " ".join(part for part in (self.slot, self.resource) if part)
        return f"{where}: {self.kind} {self.found}, expected {self.expected}"


@dataclass
class FleetDrift:
    fleet: str
    pointer: str
    findings: list[Finding] = field(default_factory=list)
    action: str = "reported"


def _held(item: dict[str, Any], now: datetime) -> bool:
    expires = item.get("lock_expires")
    return bool(item.get("lock_owner")) and (not expires or clock.parse_time(str(expires)) > now)


def _warm(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The fleet's rollback window while it lasts (its old slot keeps the AMI before),
    and a while after: its release retires the old slot once the window ends, a step or
    two later, and closes the window then."""
    window = item.get("warm_slot") or {}
    until = window.get("until")
    return window if until and clock.parse_time(str(until)) + RETIRE_GRACE > now else {}


@dataclass(frozen=True)
class Facts:
    """What the check knows of one fleet: its spec, the parameters it read (by name), the
    fleet's ledger item, each slot as observed (None: no such group), and when."""

    environment: str
    spec: dict[str, Any]
    params: dict[str, str]
    item: dict[str, Any]
    slots: dict[str, observed.ObservedSlot | None]
    now: datetime

    @property
    def fleet(self) -> str:
        return str(self.spec["name"])

    def parameter(self, slot: str, setting: SlotSetting) -> str | None:
        return self.params.get(slot_parameter(self.environment, self.fleet, slot, setting))  # type: ignore[arg-type]


def find(facts: Facts) -> FleetDrift:
    """One fleet's drift."""
    pointer = facts.params.get(release_pointer(facts.environment, facts.fleet), "")
    drift = FleetDrift(facts.fleet, pointer)
    held, window = _held(facts.item, facts.now), _warm(facts.item, facts.now)
    flight = facts.item.get("flight") or {}
    for slot, seen in sorted(facts.slots.items()):
        group = str(facts.spec["slots"][slot]["group"])
        if seen is None:
            drift.findings.append(Finding("idle capacity", slot, "no group", "a group", group))
            continue
        allowed = {pointer}
        if held and flight.get("to_ami"):
            allowed.add(str(flight["to_ami"]))
        if window.get("old_slot") == slot and window.get("previous_ami"):
            allowed.add(str(window["previous_ami"]))
        drill = facts.item.get("drill") or {}
        if drill.get("id") == facts.item.get("lock_owner") and drill.get("slot") == slot and held:
            allowed.add(str(drill["ami"]))  # a rollback drill's instance (phoenix/drills/)
        expected = " or ".join(sorted(a for a in allowed if a))
        for instance_id, instance in sorted(seen.instances.items()):
            if instance.ami not in allowed:
                drift.findings.append(
                    Finding("instance AMI", slot, instance.ami, expected, instance_id)
                )
        if not held:
            drift.findings += _settings(facts, slot, seen, window)
    return drift


def _settings(
    facts: Facts, slot: str, seen: observed.ObservedSlot, window: dict[str, Any]
) -> list[Finding]:
    """A free fleet's slot against its controller-owned parameters."""
    group = str(facts.spec["slots"][slot]["group"])
    found: list[Finding] = []
    weight = facts.parameter(slot, "weight")
    # An empty idle slot's version is the next release's to write (it prepares a version
    # from the one the last deploy created), and nothing runs on it meanwhile.
    empty_idle = weight == "0" and seen.desired == 0 and not seen.instances
    version = facts.parameter(slot, "launch-template-version")
    if version is not None and seen.launch_template_version != version and not empty_idle:
        running = str(seen.launch_template_version)
        found.append(Finding("launch template version", slot, running, version, group))
    if weight is not None and str(seen.weight) != weight:
        found.append(Finding("weight", slot, str(seen.weight), weight, group))
    minimum = facts.parameter(slot, "min-size")
    if minimum is not None and str(seen.min_size) != minimum:
        found.append(Finding("min size", slot, str(seen.min_size), minimum, group))
    idle = weight == "0" and window.get("old_slot") != slot
    if idle and seen.desired > 0:
        found.append(Finding("idle capacity", slot, str(seen.desired), "0", group))
    return found


def check(aws: Clients, settings: DriftSettings) -> list[FleetDrift]:
    """Every fleet of the environment checked; events put and releases requested."""
    environment = settings.environment
    specs = read_registry(aws.ssm, environment)
    names = sorted(specs)
    wanted = [release_pointer(environment, name) for name in names] + [
        slot_parameter(environment, name, slot, setting)
        for name in names
        for slot in specs[name]["slots"]
        for setting in SETTINGS
    ]
    # The stacks first: what CloudFormation found is the previous detection's, so it does
    # not race the rest, which is read as close together as it can be.
    in_stacks = stacks.check_stacks(aws.cloudformation, specs)
    # The ledger first and again last: a fleet a release took or let go meanwhile may be
    # seen half moved (its parameters before the release's step, its groups after), so
    # it is left to the next run.
    now = clock.now()  # what is read is judged as of when the reading began
    items = observed.fleet_items(aws.dynamodb, settings.table_name, names)
    params = read_parameters(aws.ssm, wanted)
    seen = observed.observe(aws.autoscaling, aws.ec2, aws.elbv2, specs)
    after = observed.fleet_items(aws.dynamodb, settings.table_name, names)
    drifted = []
    for name in names:
        slots = {slot: seen.get((name, slot)) for slot in specs[name]["slots"]}
        facts = Facts(environment, specs[name], params, after[name], slots, now)
        if _moved(items[name], after[name]):
            logger.info("fleet moved during the check: checked next run", extra={"fleet": name})
            drift = FleetDrift(name, params.get(release_pointer(environment, name), ""))
        else:
            drift = find(facts)
        drift.findings += [
            Finding("stack resource", "", r.found, r.expected, r.logical_id)
            for r in in_stacks.get(name, [])
        ]
        if drift.findings:
            _act(aws, facts, drift)
            drifted.append(drift)
    return drifted


# What a release (or a drill, or a rollback window's end) changes in a fleet's item.
MOVES = ("lock_owner", "lock_expires", "last_release", "flight", "warm_slot", "drill")


def _moved(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return any(before.get(key) != after.get(key) for key in MOVES)


def _act(aws: Clients, facts: Facts, drift: FleetDrift) -> None:
    """Tell of the drift; with `drift: remediate`, release the pointer AMI (never while a
    release holds the fleet, inside a rollback window or while paused: the next check
    finds what is left)."""
    releasable = [f for f in drift.findings if f.kind in RELEASABLE]
    if facts.spec.get("drift") == "remediate" and drift.pointer:
        if not releasable:
            drift.action = "left: a release does not put a stack resource back"
        elif _held(facts.item, facts.now):
            drift.action = "left: a release holds the fleet"
        elif facts.item.get("paused"):
            drift.action = "left: the fleet is paused"
        elif unnumbered := [
            f for f in drift.findings
            if f.kind == "launch template version" and not f.found.isdigit()
        ]:  # fmt: skip
            # a release's preflight refuses a group on $Latest or $Default: a person sets
            # the version the controller named back, or the next deploy does
            drift.action = f"left: {unnumbered[0].resource} is on {unnumbered[0].found}"
        elif _warm(facts.item, facts.now):
            # the release before it may still be rolled back to its old slot
            drift.action = "left: inside a rollback window"
        else:
            reason = f"drift: {releasable[0].text()}"
            if len(drift.findings) > 1:
                reason += f" (and {len(drift.findings) - 1} more)"
            request = {
                "fleet": drift.fleet,
                "ami": drift.pointer,
                "requested_by": REQUESTED_BY,
                "reason": reason[:250],
            }
            events.put(aws.events, "Release Requested", request)
            drift.action = "release of the pointer AMI requested"
    events.put(
        aws.events,
        "Fleet Drift Detected",
        {
            "environment": facts.environment,
            "fleet": drift.fleet,
            "pointer": drift.pointer,
            "finding_count": len(drift.findings),
            "findings": [f.__dict__ for f in drift.findings[:FINDINGS_PER_EVENT]],
            "action": drift.action,
        },
    )
    logger.warning(
        "fleet drifted",
        extra={"fleet": drift.fleet, "findings": len(drift.findings), "action": drift.action},
    )
