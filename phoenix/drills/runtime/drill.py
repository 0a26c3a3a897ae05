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

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from phoenix.kernel import clock, events, observed
from phoenix.kernel.attributes import typed
from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import Ledger, fleet_key, iso
from phoenix.kernel.locks import DRILL_PREFIX
from phoenix.kernel.names import FLEET_TAG, slot_parameter
from phoenix.kernel.registry import read_parameters, read_registry
from phoenix.kernel.settings import ReleaseSettings

if TYPE_CHECKING:
    from types_boto3_ec2.type_defs import LaunchTemplateSpecificationTypeDef, TagTypeDef

logger = Logger(child=True)
# A drill's instance is healthy within this, or the drill fails.
DRILL_TIMEOUT = timedelta(minutes=15)
# The lock a drill holds: past its timeout and the next run after it.
DRILL_HOLD = timedelta(minutes=30)
# At most this many drills start in one run, so hundreds of fleets never drill at once.
STARTS_PER_RUN = 5
# A failed drill is tried again after this, not after the fleet's whole interval: its
# alarm keeps firing until the way back works again.
RETRY_FAILED = timedelta(hours=1)
# A rolling fleet's temporary instance carries the drill's id.
DRILL_TAG = "phoenix:drill"
Action = Literal["started", "passed", "failed", "waiting", "skipped"]


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
        _advance(on, specs[name], items[name]["drill"], now)
        for name in names
        if items[name].get("drill")
    ]
    due = [name for name in names if is_due(specs[name], items[name], now)]
    due.sort(key=lambda name: str(items[name].get("last_drill_at", "")))
    for name in due[:STARTS_PER_RUN]:
        outcomes.append(_start(on, specs[name], items[name]))
    return outcomes


def is_due(spec: dict[str, Any], item: dict[str, Any], now: datetime) -> bool:
    every = int(spec.get("drill_every_seconds", 0))
    if not every or not item.get("previous_good_ami") or item.get("drill"):
        return False
    expires = item.get("lock_expires")
    locked = item.get("lock_owner") and (not expires or clock.parse_time(str(expires)) > now)
    if locked or item.get("paused") or item.get("warm_slot"):
        return False
    last = item.get("last_drill_at")
    if item.get("last_drill_outcome") == "failed":
        every = min(every, int(RETRY_FAILED.total_seconds()))
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
        return _launch_temporary(on, spec, drill, now)
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
        return Outcome(fleet, "skipped", "no slot is idle")
    slot = spec["slots"][idle]
    drill |= {"slot": idle, "group": slot["group"], "target_group": slot["target_group"]}
    drill["proof"] = "an instance healthy in the idle slot"
    (group,) = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[slot["group"]])[
        "AutoScalingGroups"
    ]
    version = str(group.get("LaunchTemplate", {}).get("Version", ""))
    (data,) = aws.ec2.describe_launch_template_versions(
        LaunchTemplateId=slot["launch_template"], Versions=[version]
    )["LaunchTemplateVersions"]
    named = data.get("LaunchTemplateData", {}).get("ImageId")
    if named != target:
        problem = (
            f"the idle slot's launch template version {version} names {named}, "
            f"not the rollback target {target}"
        )
        return _record(on, fleet, drill, problem)
    if group["DesiredCapacity"] or group.get("Instances"):
        return Outcome(fleet, "skipped", f"the idle slot {idle} has instances")
    if not _lock(on.book, fleet, drill, now):
        return Outcome(fleet, "skipped", "a release holds the fleet")
    aws.autoscaling.update_auto_scaling_group(AutoScalingGroupName=slot["group"], DesiredCapacity=1)
    logger.info("drill started", extra={"fleet": fleet, "drill": drill})
    return Outcome(fleet, "started", f"one instance of {target} in the idle slot {idle}")


def _launch_temporary(
    on: _Run, spec: dict[str, Any], drill: dict[str, Any], now: datetime
) -> Outcome:
    """A rolling fleet: one instance outside its group and target group, from the group's
    launch template version with the rollback target's AMI (what a rollback release
    launches: a version of the same template with the AMI before), in one of its subnets,
    tagged as the fleet's and the drill's."""
    fleet, (slot,) = str(spec["name"]), spec["slots"].values()
    (group,) = on.aws.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[slot["group"]]
    )["AutoScalingGroups"]
    template: LaunchTemplateSpecificationTypeDef = {
        "LaunchTemplateId": slot["launch_template"],
        "Version": str(group.get("LaunchTemplate", {}).get("Version", "")),
    }
    drill |= {"proof": "a temporary instance passing its EC2 status checks"}
    if not _lock(on.book, fleet, drill, now):
        return Outcome(fleet, "skipped", "a release holds the fleet")
    tags: list[TagTypeDef] = [
        {"Key": FLEET_TAG, "Value": f"{on.settings.environment}/{fleet}"},
        {"Key": DRILL_TAG, "Value": drill["id"]},
    ]
    try:
        launched = on.aws.ec2.run_instances(
            LaunchTemplate=template,
            ImageId=drill["ami"],
            MinCount=1,
            MaxCount=1,
            SubnetId=str(group["VPCZoneIdentifier"]).split(",")[0],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
    except ClientError as error:
        return _record(on, fleet, drill, f"the rollback target did not launch: {error}")
    drill["instance"] = str(launched["Instances"][0]["InstanceId"])
    on.book.update_fleet_if(
        fleet,
        UpdateExpression="SET drill = :state",
        ConditionExpression="lock_owner = :drill",
        ExpressionAttributeValues={":drill": {"S": drill["id"]}, ":state": typed(drill)},
    )
    logger.info("drill started", extra={"fleet": fleet, "drill": drill})
    return Outcome(fleet, "started", f"a temporary instance {drill['instance']} of {drill['ami']}")


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


def _advance(on: _Run, spec: dict[str, Any], drill: dict[str, Any], now: datetime) -> Outcome:
    fleet = str(spec["name"])
    if "instance" in drill or "target_group" not in drill:
        return _advance_temporary(on, fleet, drill, now)
    targets = on.aws.elbv2.describe_target_health(TargetGroupArn=drill["target_group"])
    states = sorted(
        str(t.get("TargetHealth", {}).get("State")) for t in targets["TargetHealthDescriptions"]
    )
    waited = now - clock.parse_time(str(drill["started_at"]))
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


def _advance_temporary(on: _Run, fleet: str, drill: dict[str, Any], now: datetime) -> Outcome:
    """A rolling fleet's temporary instance: passed once running with both EC2 status
    checks ok, failed if it stops or after the timeout (no instance: the launch was
    never recorded, and the drill ends as failed)."""
    statuses = (
        on.aws.ec2.describe_instance_status(
            InstanceIds=[drill["instance"]], IncludeAllInstances=True
        )["InstanceStatuses"]
        if drill.get("instance")
        else []
    )
    status: dict[str, Any] = dict(statuses[0]) if statuses else {}
    state = status.get("InstanceState", {}).get("Name", "gone")
    checks = (
        status.get("InstanceStatus", {}).get("Status"),
        status.get("SystemStatus", {}).get("Status"),
    )
    if state == "running" and checks == ("ok", "ok"):
        return _finish(on, fleet, drill, "")
    waited = now - clock.parse_time(str(drill["started_at"]))
    if state in {"pending", "running"} and waited < DRILL_TIMEOUT:
        return Outcome(fleet, "waiting", f"{state}, status checks {checks[0]}/{checks[1]}")
    problem = (
        f"the temporary instance of the rollback target {drill['ami']} is {state} "
        f"(status checks {checks[0]}/{checks[1]}) after {int(waited.total_seconds() // 60)} minutes"
    )
    return _finish(on, fleet, drill, problem)


def _finish(on: _Run, fleet: str, drill: dict[str, Any], problem: str) -> Outcome:
    """The temporary instance terminated, or the idle slot back to 0 (only while the drill
    still holds the fleet: a release that took it after the lock ran out owns the slot
    now), then recorded and freed."""
    if drill.get("instance"):
        on.aws.ec2.terminate_instances(InstanceIds=[drill["instance"]])
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


def _record(on: _Run, fleet: str, drill: dict[str, Any], problem: str) -> Outcome:
    """The drill in the ledger, the fleet item's last drill (and its lock freed, if the
    drill holds it), and its event."""
    outcome: Action = "failed" if problem else "passed"
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
    if not freed:  # never locked (the target's describe failed), or the lock ran out
        values.pop(":drill")
        aws.dynamodb.update_item(
            TableName=settings.table_name,
            Key=fleet_key(fleet),
            UpdateExpression=f"{last} REMOVE drill",
            ExpressionAttributeValues=values,
        )
    events.put(
        aws.events,
        "Rollback Drill Failed" if problem else "Rollback Drill Passed",
        {"environment": settings.environment, "fleet": fleet, **record},
    )
    log = logger.warning if problem else logger.info
    log("drill ended", extra={"fleet": fleet, "outcome": outcome, "reason": problem})
    return Outcome(fleet, outcome, problem)
