"""Rollback drills: prove, without touching traffic, that each fleet's way back still works.

The environment's schedule runs the drill function every few minutes (docs/hygiene.md).
Each run reads every fleet of the registry and its ledger item (batched, as the drift
check does), then:
- moves on each drill under way: passed once an instance of the idle slot is healthy in
  its target group (weight 0: the listener sends it nothing), or a rolling fleet's
  temporary instance runs with its EC2 status checks ok; failed after `DRILL_TIMEOUT`;
  either way the slot goes back to 0 instances (the temporary instance is terminated),
  the drill is recorded
  (`DRILL#<start>` in the ledger), the lock is freed and `Rollback Drill Passed` or
  `Rollback Drill Failed` is put;
- starts at most `STARTS_PER_RUN` of the drills that are due (the fleet's
  `drill_every_seconds` since its last drill, an hour after a failed one; oldest first),
  never while a release or
  another drill holds the fleet, while it is paused, or inside a rollback window (whose
  warm slot already holds the AMI before).

A drill first describes the rollback target (the fleet item's `previous_good_ami`): an
AMI deregistered, not `available`, or whose snapshot is gone fails the drill at once. A
blue_green or canary fleet then checks that its idle slot's launch template version
names that AMI (the version a rollback moves traffic to), takes the fleet's lock as
`drill-<time>` (a release that meets it waits: phoenix/kernel/locks.py) and asks the
idle group for one instance. A rolling fleet has no idle slot: it takes the lock the
same way and launches one temporary instance of the target from its group's launch
template (RunInstances, outside the group and its target group).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from phoenix.drills.runtime import temporary
from phoenix.kernel import clock, events, observed
from phoenix.kernel.attributes import typed
from phoenix.kernel.clients import Clients
from phoenix.kernel.fleet_calls import group_template
from phoenix.kernel.ledger import Ledger, fleet_key, iso
from phoenix.kernel.locks import DRILL_PREFIX
from phoenix.kernel.names import slot_parameter
from phoenix.kernel.registry import read_parameters, read_registry
from phoenix.kernel.settings import ReleaseSettings

if TYPE_CHECKING:
    pass

logger = Logger(child=True)
# A drill's instance is healthy within this, or the drill fails.
DRILL_TIMEOUT = timedelta(minutes=15)
# The lock a drill holds: past its timeout and the next run after it.
DRILL_HOLD = timedelta(minutes=30)
# At most this many drills start in one run, so hundreds of fleets never drill at once.
STARTS_PER_RUN = 5
# A drill that failed, was skipped or was interrupted is tried again after this, not after
# the fleet's whole interval: a failed drill's alarm keeps firing until the way back works.
RETRY = timedelta(hours=1)
Action = Literal["started", "passed", "failed", "waiting", "skipped", "interrupted", "error"]


class DrillSettings(ReleaseSettings):
    """The drill function's settings: the environment and its ledger table."""


@dataclass(frozen=True)
class _Run:
    """What every step of one run uses."""

    aws: Clients
    settings: DrillSettings
    book: Ledger


@dataclass(frozen=True)
class Outcome:
    fleet: str
    action: Action
    reason: str = ""


def run(aws: Clients, settings: DrillSettings) -> list[Outcome]:
    """One run: drills under way moved on, due ones started."""
    specs = read_registry(aws.ssm, settings.environment)
    names = sorted(specs)
    items = observed.fleet_items(aws.dynamodb, settings.table_name, names)
    now = clock.now()
    on = _Run(aws, settings, Ledger(aws.dynamodb, settings.table_name))
    outcomes = [
        _guarded(name, partial(_advance, on, specs[name], items[name], now))
        for name in names
        if items[name].get("drill")
    ]
    due = [name for name in names if is_due(specs[name], items[name], now)]
    due.sort(key=lambda name: str(items[name].get("last_drill_at", "")))
    outcomes += [
        _guarded(name, partial(_start, on, specs[name], items[name]))
        for name in due[:STARTS_PER_RUN]
    ]
    return outcomes


def _guarded(fleet: str, step: Callable[[], Outcome]) -> Outcome:
    """One fleet's step; an error is logged and left to the next run (every write of a
    drill repeats safely), so one fleet's throttled call stops no other fleet's drill."""
    try:
        return step()
    except Exception as error:  # any error: this fleet's alone; the next run tries again
        logger.exception("drill step failed", extra={"fleet": fleet})
        return Outcome(fleet, "error", f"{type(error).__name__}: {error}")


def is_due(spec: dict[str, Any], item: dict[str, Any], now: datetime) -> bool:
    every = int(spec.get("drill_every_seconds", 0))
    if not every or not item.get("previous_good_ami") or item.get("drill"):
        return False
    expires = item.get("lock_expires")
    locked = item.get("lock_owner") and (not expires or clock.parse_time(str(expires)) > now)
    if locked or item.get("paused") or item.get("warm_slot"):
        return False
    last = item.get("last_drill_at")
    if item.get("last_drill_outcome") in {"failed", "skipped", "interrupted"}:
        every = min(every, int(RETRY.total_seconds()))
    return not last or clock.parse_time(str(last)) + timedelta(seconds=every) <= now


def target_problem(aws: Clients, ami: str) -> str:
    """Why the rollback target could not be launched ("" when it could): deregistered,
    not available, or a snapshot of its block devices gone."""
    try:
        images = aws.ec2.describe_images(ImageIds=[ami]).get("Images", [])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {
            "InvalidAMIID.NotFound",
            "InvalidAMIID.Unavailable",
        }:
            raise
        images = []
    if not images:
        return f"the rollback target {ami} is deregistered"
    image = images[0]
    if image.get("State") != "available":
        return f"the rollback target {ami} is {image.get('State')}, not available"
    snapshots = sorted(
        str(m["Ebs"]["SnapshotId"])
        for m in image.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("SnapshotId")
    )
    if snapshots:
        try:
            found = aws.ec2.describe_snapshots(SnapshotIds=snapshots).get("Snapshots", [])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "InvalidSnapshot.NotFound":
                raise
            found = []
        missing = sorted(set(snapshots) - {str(s["SnapshotId"]) for s in found})
        if missing:
            return f"the snapshot {missing[0]} of the rollback target {ami} is gone"
    return ""


def _start(on: _Run, spec: dict[str, Any], item: dict[str, Any]) -> Outcome:
    aws = on.aws
    fleet, target, now = str(spec["name"]), str(item["previous_good_ami"]), clock.now()
    drill: dict[str, Any] = {"id": f"{DRILL_PREFIX}{now:%Y%m%dT%H%M%SZ}", "ami": target}
    drill["started_at"] = iso(now)
    problem = target_problem(aws, target)
    if problem:
        drill["proof"] = "target described"
        return _record(on, fleet, drill, problem)
    if spec["strategy"] == "rolling":
        drill |= {"kind": "temporary", "proof": "an instance passing its EC2 status checks"}
        if not _lock(on.book, fleet, drill, now):
            return _skip(on, fleet, drill, "a release holds the fleet")
        try:
            drill["instance"] = temporary.launch(aws, on.settings.environment, spec, drill)
        except ClientError as error:
            return _finish(on, fleet, drill, f"the rollback target did not launch: {error}")
        on.book.update_fleet_if(  # (found by its tag if this write is lost)
            fleet,
            UpdateExpression="SET drill = :state",
            ConditionExpression="lock_owner = :drill",
            ExpressionAttributeValues={":drill": {"S": drill["id"]}, ":state": typed(drill)},
        )
        return Outcome(fleet, "started", f"instance {drill['instance']} of {target}")
    return _launch_in_idle_slot(on, spec, drill, now)


def _launch_in_idle_slot(
    on: _Run, spec: dict[str, Any], drill: dict[str, Any], now: datetime
) -> Outcome:
    """blue_green and canary: one instance of the target in the idle slot (weight 0),
    from the slot's version, which must name the target (the version a rollback sends
    traffic back to)."""
    aws, fleet, target = on.aws, str(spec["name"]), str(drill["ami"])
    idle = _idle_slot(aws, on.settings.environment, spec)
    if idle is None:
        return _skip(on, fleet, drill, "no slot is idle")
    slot = spec["slots"][idle]
    drill |= {"slot": idle, "group": slot["group"], "target_group": slot["target_group"]}
    group, version, data = group_template(
        aws.autoscaling, aws.ec2, slot["group"], slot["launch_template"]
    )
    named = data.get("LaunchTemplateData", {}).get("ImageId")
    if named != target:
        problem = (
            f"the idle slot's launch template version {version} names {named}, "
            f"not the rollback target {target}"
        )
        drill["proof"] = "the idle slot's launch template version read"
        return _record(on, fleet, drill, problem)
    if group["DesiredCapacity"] or group.get("Instances"):
        return _skip(on, fleet, drill, f"the idle slot {idle} has instances")
    # (a `kind`: the drill holds, or held, the fleet's lock)
    drill |= {"kind": "idle slot", "proof": "an instance healthy in the idle slot"}
    if not _lock(on.book, fleet, drill, now):
        return _skip(on, fleet, drill, "a release holds the fleet")
    try:
        aws.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=slot["group"], DesiredCapacity=1
        )
    except ClientError as error:  # (botocore has retried what AWS throttled)
        return _finish(on, fleet, drill, f"the idle slot could not be scaled: {error}")
    logger.info("drill started", extra={"fleet": fleet, "drill": drill})
    return Outcome(fleet, "started", f"one instance of {target} in the idle slot {idle}")


def _idle_slot(aws: Clients, environment: str, spec: dict[str, Any]) -> str | None:
    """The slot the controller gives no traffic (its `weight` parameter is 0)."""
    fleet = str(spec["name"])
    names = {slot_parameter(environment, fleet, s, "weight"): s for s in spec["slots"]}
    weights = read_parameters(aws.ssm, sorted(names))
    idle = [names[name] for name, weight in weights.items() if weight == "0"]
    return idle[0] if len(idle) == 1 else None


def _lock(book: Ledger, fleet: str, drill: dict[str, Any], now: datetime) -> bool:
    """Take the fleet for the drill: free (or its holder's time ran out), not paused, no
    rollback window and no other drill."""
    return book.update_fleet_if(
        fleet,
        UpdateExpression="SET lock_owner = :drill, lock_expires = :expires, drill = :state",
        ConditionExpression="(attribute_not_exists(lock_owner) OR lock_expires < :now) "
        "AND (attribute_not_exists(paused) OR paused = :false) "
        "AND attribute_not_exists(warm_slot) AND attribute_not_exists(drill)",
        ExpressionAttributeValues={
            ":drill": {"S": drill["id"]},
            ":expires": {"S": iso(now + DRILL_HOLD)},
            ":now": {"S": iso(now)},
            ":false": {"BOOL": False},
            ":state": typed(drill),
        },
    )


def _advance(on: _Run, spec: dict[str, Any], item: dict[str, Any], now: datetime) -> Outcome:
    fleet, drill = str(spec["name"]), dict(item["drill"])
    waited = now - clock.parse_time(str(drill["started_at"]))
    if item.get("lock_owner") != drill["id"]:
        # A rollback release took the fleet (or the lock ran out and a release did): the
        # slot is the release's now; a temporary instance is still the drill's to end.
        if drill.get("kind") == "temporary":
            temporary.terminate(on.aws, drill)
        why = f"interrupted: {item.get('lock_owner') or 'nobody'} holds the fleet"
        return _record(on, fleet, drill, why, outcome="interrupted")
    if drill.get("kind") == "temporary":
        return _advance_temporary(on, fleet, drill, waited)
    targets = on.aws.elbv2.describe_target_health(TargetGroupArn=drill["target_group"])
    states = sorted(
        str(t.get("TargetHealth", {}).get("State")) for t in targets["TargetHealthDescriptions"]
    )
    if "healthy" in states:
        return _finish(on, fleet, drill, "")
    if waited < DRILL_TIMEOUT:
        return Outcome(fleet, "waiting", ", ".join(states) or "no instance yet")
    problem = (
        f"no instance of the rollback target {drill['ami']} was healthy in the idle slot "
        f"within {int(DRILL_TIMEOUT.total_seconds() // 60)} minutes "
        f"(targets: {', '.join(states) or 'none'})"
    )
    return _finish(on, fleet, drill, problem)


def _advance_temporary(on: _Run, fleet: str, drill: dict[str, Any], waited: timedelta) -> Outcome:
    if not drill.get("instance"):
        return _finish(on, fleet, drill, "the temporary instance was never recorded")
    verdict, why = temporary.status(on.aws, drill, waited, DRILL_TIMEOUT)
    if verdict == "waiting":
        return Outcome(fleet, "waiting", why)
    return _finish(on, fleet, drill, why)


def _finish(on: _Run, fleet: str, drill: dict[str, Any], problem: str) -> Outcome:
    """The temporary instance terminated, or the idle slot back to 0 (only while the drill
    still holds the fleet: a release that took it after the lock ran out owns the slot
    now), then recorded and freed."""
    if drill.get("kind") == "temporary":
        temporary.terminate(on.aws, drill)
        return _record(on, fleet, drill, problem)
    held = on.book.update_fleet_if(
        fleet,
        UpdateExpression="SET lock_expires = :soon",
        ConditionExpression="lock_owner = :drill",
        ExpressionAttributeValues={
            ":drill": {"S": drill["id"]},
            ":soon": {"S": iso(clock.now() + timedelta(minutes=5))},
        },
    )
    if held:
        on.aws.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=drill["group"], DesiredCapacity=0
        )
    return _record(on, fleet, drill, problem)


def _skip(on: _Run, fleet: str, drill: dict[str, Any], why: str) -> Outcome:
    """Not started: noted on the fleet item, so the fleet waits its hour (RETRY) and
    does not take a start from the fleets behind it on every run."""
    on.aws.dynamodb.update_item(
        TableName=on.settings.table_name,
        Key=fleet_key(fleet),
        UpdateExpression="SET last_drill_at = :at, last_drill_outcome = :skipped, "
        "last_drill_reason = :why",
        ExpressionAttributeValues={
            ":at": {"S": drill["started_at"]},
            ":skipped": {"S": "skipped"},
            ":why": {"S": why},
        },
    )
    return Outcome(fleet, "skipped", why)


def _record(
    on: _Run, fleet: str, drill: dict[str, Any], problem: str, outcome: Action | None = None
) -> Outcome:
    """The drill in the ledger, the fleet item's last drill (and its lock freed, if the
    drill holds it), and its event (none for an interrupted drill)."""
    outcome = outcome or ("failed" if problem else "passed")
    ended = iso(clock.now())
    record = {**drill, "outcome": outcome, "reason": problem, "ended_at": ended}
    aws, settings = on.aws, on.settings
    aws.dynamodb.put_item(
        TableName=settings.table_name,
        Item={
            "pk": {"S": f"FLEET#{fleet}"},
            "sk": {"S": f"DRILL#{drill['started_at']}"},
            **{name: typed(value) for name, value in record.items()},
        },
    )
    last = "SET last_drill_at = :at, last_drill_outcome = :outcome, last_drill_reason = :reason"
    values: dict[str, Any] = {
        ":at": {"S": drill["started_at"]},
        ":outcome": {"S": outcome},
        ":reason": {"S": problem},
        ":drill": {"S": drill["id"]},
    }
    freed = on.book.update_fleet_if(
        fleet,
        UpdateExpression=f"{last} REMOVE drill, lock_owner, lock_expires",
        ConditionExpression="lock_owner = :drill",
        ExpressionAttributeValues=values,
    )
    if not freed and drill.get("kind"):
        # its lock ran out or was taken: the drill's own record, unless another run
        # (a retried invocation) has recorded it already, and then no second event
        freed = on.book.update_fleet_if(
            fleet,
            UpdateExpression=f"{last} REMOVE drill",
            ConditionExpression="drill.id = :drill",
            ExpressionAttributeValues=values,
        )
        if not freed:
            return Outcome(fleet, outcome, f"recorded already: {problem}")
    elif not freed:  # never locked: the target's describe failed
        values.pop(":drill")
        aws.dynamodb.update_item(
            TableName=settings.table_name,
            Key=fleet_key(fleet),
            UpdateExpression=last,
            ExpressionAttributeValues=values,
        )
    if outcome != "interrupted":
        events.put(
            aws.events,
            "Rollback Drill Failed" if outcome == "failed" else "Rollback Drill Passed",
            {"environment": settings.environment, "fleet": fleet, **record},
        )
    log = logger.warning if problem else logger.info
    log("drill ended", extra={"fleet": fleet, "outcome": outcome, "reason": problem})
    return Outcome(fleet, outcome, problem)
