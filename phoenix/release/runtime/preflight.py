"""Preflight: the rollback-safety checks a release passes before it changes anything.

The checks: docs/release.md, Preflight checks. Each failed check raises
PreflightFailedError naming the check and the resource. The reads are one call per
service, whatever the fleet's size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from phoenix.kernel import clock
from phoenix.kernel.fleet_calls import ACTIVE_REFRESH_STATUSES, alarms_in_alarm, latest_refresh
from phoenix.kernel.names import Slot, in_listener_order, release_pointer, slot_parameter
from phoenix.release.runtime.models import Capacity, FleetSpec, Plan, ReleaseState, TrafficStep
from phoenix.release.runtime.strategy import RELEASE_VERSION

if TYPE_CHECKING:
    from types_boto3_autoscaling.client import AutoScalingClient
    from types_boto3_autoscaling.type_defs import AutoScalingGroupTypeDef
    from types_boto3_cloudwatch.client import CloudWatchClient
    from types_boto3_ec2.client import EC2Client
    from types_boto3_ec2.type_defs import LaunchTemplateVersionTypeDef
    from types_boto3_ssm.client import SSMClient


class NothingToReleaseError(Exception):
    """A deploy's release whose deploy changed nothing the fleet runs: the execution ends
    at once, with no lock taken and nothing recorded."""


class PreflightFailedError(Exception):
    def __init__(self, check: str, resource: str, detail: str) -> None:
        super().__init__(f"preflight check '{check}' failed for {resource}: {detail}")
        self.check = check
        self.resource = resource


def _other(slot: Slot) -> Slot:
    return "green" if slot == "blue" else "blue"


def read_controller_state(ssm: SSMClient, state: ReleaseState) -> dict[str, str]:
    """The pointer and the slots' weights (GetParameters, one call)."""
    spec = state.fleet_spec
    names = [release_pointer(state.environment, spec.name)]
    if spec.strategy != "rolling":
        names += [slot_parameter(state.environment, spec.name, s, "weight") for s in spec.slots]
    response = ssm.get_parameters(Names=names)
    values = {p["Name"]: str(p["Value"]) for p in response.get("Parameters", [])}
    for name in response.get("InvalidParameters", []):
        raise PreflightFailedError("controller state", name, "the parameter does not exist")
    return values


def active_slot(state: ReleaseState, parameters: dict[str, str]) -> Slot:
    spec = state.fleet_spec
    if spec.strategy == "rolling":
        return "blue"
    weights = {
        slot: int(parameters[slot_parameter(state.environment, spec.name, slot, "weight")])
        for slot in ("blue", "green")
    }
    if weights["blue"] == weights["green"]:
        raise PreflightFailedError(
            "one active slot",
            f"listener {spec.listener}",
            f"traffic is split {weights['blue']}/{weights['green']} between blue and green "
            "(a release was interrupted); shift it to one slot first",
        )
    return "blue" if weights["blue"] > weights["green"] else "green"


def check_images(ec2: EC2Client, state: ReleaseState, from_ami: str) -> None:
    """The target AMI exists here, is available and of the fleet's architecture; the
    previous AMI (the rollback target) is still launchable."""
    found = ec2.describe_images(ImageIds=sorted({state.ami, from_ami}))["Images"]
    images = {image["ImageId"]: image for image in found}
    target = images.get(state.ami)
    if target is None:
        raise PreflightFailedError("target AMI exists", state.ami, "not found in this region")
    if target.get("State") != "available":
        raise PreflightFailedError("target AMI available", state.ami, f"state {target['State']}")
    if target.get("Architecture") != state.fleet_spec.architecture:
        raise PreflightFailedError(
            "target AMI architecture",
            state.ami,
            f"{target.get('Architecture')}, but the fleet runs {state.fleet_spec.architecture}",
        )
    previous = images.get(from_ami)
    if previous is None:
        raise PreflightFailedError(
            "rollback AMI launchable", from_ami, "deregistered (not found in this region)"
        )
    if previous.get("State") != "available":
        raise PreflightFailedError(
            "rollback AMI launchable", from_ami, f"state {previous.get('State')}"
        )
    deprecation = previous.get("DeprecationTime")
    if deprecation and clock.parse_time(deprecation) <= clock.now():
        raise PreflightFailedError(
            "rollback AMI launchable", from_ami, f"deprecated since {deprecation}"
        )


def check_groups(
    autoscaling: AutoScalingClient, spec: FleetSpec
) -> dict[str, AutoScalingGroupTypeDef]:
    """Every slot's group exists and uses an explicit launch template version."""
    names = [slot.group for slot in spec.slots.values()]
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=names)
    groups = {g["AutoScalingGroupName"]: g for g in found["AutoScalingGroups"]}
    for name in names:
        group = groups.get(name)
        if group is None:
            raise PreflightFailedError("group exists", name, "no such Auto Scaling group")
        version = str(group.get("LaunchTemplate", {}).get("Version", ""))
        if not version.isdigit():
            raise PreflightFailedError(
                "explicit launch template version",
                name,
                f"uses version {version or 'none'}; the controller needs a number",
            )
    return groups


VERSIONS_PER_READ = 50


def deployed_version(ec2: EC2Client, template: str) -> int:
    """The newest version of `template` that a deploy made, not a release: CloudFormation
    adds a version on every update of the template and never moves its default version,
    and every version a release makes is described `phoenix release <id>`
    (strategy.prepare). One DescribeLaunchTemplateVersions when the newest version is a
    deploy's; else one more per VERSIONS_PER_READ releases looked past."""
    (latest,) = ec2.describe_launch_template_versions(
        LaunchTemplateId=template, Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    newest = int(latest["VersionNumber"])
    if not _a_releases(latest):
        return newest
    while newest > 1:
        oldest = max(1, newest - VERSIONS_PER_READ)
        found = ec2.describe_launch_template_versions(
            LaunchTemplateId=template,
            MinVersion=str(oldest),
            MaxVersion=str(newest - 1),
            MaxResults=VERSIONS_PER_READ,
        )["LaunchTemplateVersions"]
        deployed = [int(v["VersionNumber"]) for v in found if not _a_releases(v)]
        if deployed:
            return max(deployed)
        newest = oldest
    raise PreflightFailedError(
        "a deployed launch template version", template, "every version is a release's"
    )


def _a_releases(version: LaunchTemplateVersionTypeDef) -> bool:
    return str(version.get("VersionDescription", "")).startswith(RELEASE_VERSION)


def _shape(version: LaunchTemplateVersionTypeDef) -> dict[str, object]:
    """What a launch template version launches, but the AMI (a release's own part)."""
    data = dict(version.get("LaunchTemplateData", {}))
    data.pop("ImageId", None)
    return data


def check_deploy_changed(
    state: ReleaseState, *, ssm: SSMClient, ec2: EC2Client, autoscaling: AutoScalingClient
) -> None:
    """For a deploy's release: go ahead only when the newest version a deploy made of the
    serving slot's launch template launches something other than the version its group
    runs (the AMI aside: the release keeps the pointer AMI). Raises NothingToReleaseError
    otherwise. Reads the controller's parameters, the groups and at most three
    DescribeLaunchTemplateVersions."""
    spec = state.fleet_spec
    active = active_slot(state, read_controller_state(ssm, state))
    slot = spec.slots[active]
    serving = int(check_groups(autoscaling, spec)[slot.group]["LaunchTemplate"]["Version"])
    deployed = deployed_version(ec2, slot.launch_template)
    if deployed != serving:
        versions = ec2.describe_launch_template_versions(
            LaunchTemplateId=slot.launch_template, Versions=[str(serving), str(deployed)]
        )["LaunchTemplateVersions"]
        shapes = {int(v["VersionNumber"]): _shape(v) for v in versions}
        if shapes.get(serving) != shapes.get(deployed):
            return
    raise NothingToReleaseError(
        f"{spec.name}: launch template {slot.launch_template} version {deployed}, the "
        f"newest a deploy made, launches what version {serving} ({active}) runs"
    )


def check_no_refresh(autoscaling: AutoScalingClient, group: str) -> None:
    latest = latest_refresh(autoscaling, group)
    if latest and latest["Status"] in ACTIVE_REFRESH_STATUSES:
        raise PreflightFailedError(
            "no instance refresh running",
            group,
            f"refresh {latest['InstanceRefreshId']} is {latest['Status']}",
        )


def check_alarms(cloudwatch: CloudWatchClient, spec: FleetSpec) -> None:
    firing = alarms_in_alarm(cloudwatch, spec.alarms)
    if firing:
        raise PreflightFailedError("fleet alarms OK", ", ".join(firing), "in ALARM now")


def refresh_wait_seconds(spec: FleetSpec) -> int:
    """How long a rolling refresh should take, twice over: the event-driven wait's timeout
    before it falls back to polling."""
    per_batch = max(spec.max_healthy_percentage - 100, 100 - spec.min_healthy_percentage, 1)
    batches = math.ceil(100 / per_batch)
    expected = (
        batches * spec.warmup_seconds
        + len(spec.checkpoint_pauses) * spec.checkpoint_delay_seconds
        + spec.bake_seconds
    )
    return max(600, 2 * expected)


def traffic_steps(
    spec: FleetSpec, *, rollback: bool = False, target: str | None = None
) -> list[TrafficStep]:
    """The canary's weight steps; one step to 100 otherwise, and for a rollback release
    (a fast track back to the last good AMI: full traffic once its targets are warm).
    Each also in the listener's order (`first`, `second`): the target slot's weight
    first when it is the fleet's first slot."""
    steps = spec.steps if spec.strategy == "canary" and not rollback else [100]
    target_first = target == in_listener_order(spec.slots)[0]
    return [
        TrafficStep(
            target=p, active=100 - p, last=p == 100,
            first=p if target_first else 100 - p, second=100 - p if target_first else p,
        )
        for p in steps
    ]  # fmt: skip


def run(
    state: ReleaseState,
    *,
    ssm: SSMClient,
    ec2: EC2Client,
    autoscaling: AutoScalingClient,
    cloudwatch: CloudWatchClient,
) -> Plan:
    """Every preflight check of docs/release.md, in order; the plan for the steps that follow."""
    spec = state.fleet_spec
    parameters = read_controller_state(ssm, state)
    from_ami = parameters[release_pointer(state.environment, spec.name)]
    active = active_slot(state, parameters)
    target = active if spec.strategy == "rolling" else _other(active)
    if target not in spec.slots or active not in spec.slots:
        raise PreflightFailedError("fleet slots", spec.name, f"no {target} slot")
    check_images(ec2, state, from_ami)
    groups = check_groups(autoscaling, spec)
    base = deployed_version(ec2, spec.slots[target].launch_template)
    check_no_refresh(autoscaling, spec.slots[target].group)
    if not state.is_rollback:
        # A rollback release runs because an alarm fired; the alarm stays in ALARM until
        # the good AMI serves again, so it cannot be a reason to refuse the rollback.
        check_alarms(cloudwatch, spec)
    serving = groups[spec.slots[active].group]
    slots = in_listener_order(spec.slots)
    return Plan(
        from_ami=from_ami,
        active_slot=active,
        target_slot=target,
        active_target_group=spec.slots[active].target_group,
        target_target_group=spec.slots[target].target_group,
        first_target_group=spec.slots[slots[0]].target_group,
        second_target_group=spec.slots[slots[-1]].target_group,
        source_version=int(groups[spec.slots[target].group]["LaunchTemplate"]["Version"]),
        template_version=base,
        capacity=Capacity(
            min=serving["MinSize"], max=serving["MaxSize"], desired=serving["DesiredCapacity"]
        ),
        steps=traffic_steps(spec, rollback=state.is_rollback, target=target),
        target_running=0
        if spec.strategy == "rolling"
        else int(groups[spec.slots[target].group]["DesiredCapacity"]),
        refresh_wait_seconds=refresh_wait_seconds(spec),
    )
