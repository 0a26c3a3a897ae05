"""A fleet's AWS account as preflight reads it, one stage after the other (Stubber)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from phoenix.release.runtime import preflight
from phoenix.release.runtime.models import Plan, ReleaseState
from tests.release.release_state import (
    ALARMS,
    AMI,
    GROUPS,
    POINTER,
    PREVIOUS_AMI,
    TEMPLATE_VERSION,
    TEMPLATES,
    StubbedAws,
    parameter,
    release_state,
)

STAGES = ("parameters", "images", "groups", "refreshes", "alarms")


def image(ami: str, **changes: Any) -> dict[str, Any]:
    return {"ImageId": ami, "State": "available", "Architecture": "arm64"} | changes


def group(slot: str, version: str, desired: int) -> dict[str, Any]:
    return {
        "AutoScalingGroupName": GROUPS[slot],
        "LaunchTemplate": {"LaunchTemplateId": TEMPLATES[slot], "Version": version},
        "MinSize": min(desired, 2),
        "MaxSize": 6,
        "DesiredCapacity": desired,
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "ELB",
        "CreatedTime": datetime(2026, 1, 1, tzinfo=UTC),
    }


@dataclasses.dataclass(frozen=True)
class World:
    """What the fleet's AWS account answers: by default, safe to release to."""

    weights: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"blue": "100", "green": "0"}
    )
    invalid: tuple[str, ...] = ()
    images: tuple[dict[str, Any], ...] = (image(AMI), image(PREVIOUS_AMI))
    groups: tuple[dict[str, Any], ...] = (group("blue", "6", 3), group("green", "7", 0))
    refresh: str = "Successful"
    target: str = "green"  # the slot whose refreshes preflight asks about
    firing: tuple[str, ...] = ()


def given(aws: StubbedAws, strategy: str, world: World, through: str = "alarms") -> None:
    """Queue the preflight reads, in order, up to and including stage `through`."""
    stages = STAGES[: STAGES.index(through) + 1]
    slots = ["blue"] if strategy == "rolling" else ["blue", "green"]
    names = [POINTER] + ([] if strategy == "rolling" else [parameter(s, "weight") for s in slots])
    values = {POINTER: PREVIOUS_AMI} | {parameter(s, "weight"): v for s, v in world.weights.items()}
    found = [
        {"Name": n, "Value": values[n], "Type": "String"} for n in names if n not in world.invalid
    ]
    aws.ssm.add_response(
        "get_parameters",
        {"Parameters": found}
        | ({"InvalidParameters": list(world.invalid)} if world.invalid else {}),
        {"Names": names},
    )
    if "images" in stages:
        aws.ec2.add_response(
            "describe_images",
            {"Images": list(world.images)},
            {"ImageIds": sorted({AMI, PREVIOUS_AMI})},
        )
    if "groups" in stages:
        groups = [
            g for g in world.groups if g["AutoScalingGroupName"] in {GROUPS[s] for s in slots}
        ]
        aws.autoscaling.add_response(
            "describe_auto_scaling_groups",
            {"AutoScalingGroups": groups},
            {"AutoScalingGroupNames": [GROUPS[s] for s in slots]},
        )
    target = "blue" if strategy == "rolling" else world.target
    ours = [g for g in world.groups if g["AutoScalingGroupName"] in {GROUPS[s] for s in slots}]
    good_groups = len(ours) == len(slots) and all(
        str(g["LaunchTemplate"]["Version"]).isdigit() for g in ours
    )
    if "groups" in stages and good_groups:
        # the target template's newest version: the one the last deploy made
        aws.ec2.add_response(
            "describe_launch_template_versions",
            {"LaunchTemplateVersions": [{"VersionNumber": TEMPLATE_VERSION}]},
            {"LaunchTemplateId": TEMPLATES[target], "Versions": ["$Latest"]},
        )
    if "refreshes" in stages:
        refresh = {"InstanceRefreshId": "r-0042", "Status": world.refresh}
        aws.autoscaling.add_response(
            "describe_instance_refreshes",
            {"InstanceRefreshes": [refresh | {"AutoScalingGroupName": GROUPS[target]}]},
            {"AutoScalingGroupName": GROUPS[target], "MaxRecords": 1},
        )
    if "alarms" in stages:
        alarms = [
            {"AlarmName": a, "StateValue": "ALARM" if a in world.firing else "OK"} for a in ALARMS
        ]
        aws.cloudwatch.add_response(
            "describe_alarms",
            {"MetricAlarms": alarms},
            {"AlarmNames": ALARMS, "AlarmTypes": ["MetricAlarm"]},
        )


def run_preflight(aws: StubbedAws, strategy: str) -> Plan:
    state = ReleaseState.model_validate(release_state(strategy, planned=False, prepared=False))
    clients = aws.clients
    return preflight.run(
        state,
        ssm=clients.ssm,
        ec2=clients.ec2,
        autoscaling=clients.autoscaling,
        cloudwatch=clients.cloudwatch,
    )
