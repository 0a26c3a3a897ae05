"""The release's changes to a fleet, per strategy (docs/architecture.md, The release).

Each function makes a fixed number of AWS calls, whatever the number of instances.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from phoenix.kernel import fleet_calls
from phoenix.kernel.clock import parse_time
from phoenix.kernel.fleet_calls import ACTIVE_REFRESH_STATUSES, put_parameter
from phoenix.kernel.names import Slot, in_listener_order, release_pointer, slot_parameter
from phoenix.release.runtime.models import (
    FleetSpec,
    MalformedStepError,
    Plan,
    ReleaseState,
    RollbackRefresh,
)

if TYPE_CHECKING:
    from types_boto3_autoscaling.client import AutoScalingClient
    from types_boto3_autoscaling.type_defs import InstanceRefreshTypeDef, RefreshPreferencesTypeDef
    from types_boto3_ec2.client import EC2Client
    from types_boto3_elbv2.client import ElasticLoadBalancingv2Client
    from types_boto3_ssm.client import SSMClient


# How prepare describes the launch template versions it makes (preflight tells them from
# the versions a deploy made by it).
RELEASE_VERSION = "phoenix release "


class RefreshStillCancellingError(Exception):
    """The refresh to undo is being cancelled; retry the rollback once it is Cancelled."""


class ForeignRefreshError(Exception):
    """The group's latest instance refresh is not this release's: another refresh (someone
    else's, started once this release's ended) changes the fleet. Its status says nothing
    of this release, and undoing it is not this release's to do."""


# What this release's rollback refresh ends as when the fleet is back on the version
# before the release (API reference, InstanceRefresh Status): RollbackInstanceRefresh ends
# RollbackSuccessful, a refresh back Successful. RollbackFailed, Failed and Cancelled stop
# where they are, with the fleet partly on either version.
BACK = {"rollback": "RollbackSuccessful", "refresh": "Successful"}


def prepare(ec2: EC2Client, state: ReleaseState) -> int:
    """A new launch template version for the target slot: the template as the last deploy
    shaped it (the version CloudFormation made), with the new AMI. Basing it on the version the
    group runs instead would drop every deploy-time change (instance type, user data,
    security groups) from every release."""
    plan = state.need_plan()
    template = state.fleet_spec.slots[plan.target_slot].launch_template
    response = ec2.create_launch_template_version(
        LaunchTemplateId=template,
        SourceVersion=str(plan.template_version),
        VersionDescription=f"{RELEASE_VERSION}{state.release.id}"[:255],
        LaunchTemplateData={"ImageId": state.ami},
    )
    return int(response["LaunchTemplateVersion"]["VersionNumber"])


def refresh_preferences(spec: FleetSpec, *, back: bool = False) -> RefreshPreferencesTypeDef:
    """Instance Refresh preferences: launch before terminate by default, checkpoints, bake
    time, skip matching, and AutoRollback on the fleet's alarms. The checkpoints end at 100:
    a refresh replaces instances only up to its last checkpoint, and "To replace all
    instances in the Auto Scaling group, the last number in the array must be 100" (API
    reference, RefreshPreferences.CheckpointPercentages).

    A refresh `back` to the last good version (a rollback release's, or the one that undoes
    a release) is a fast track: no checkpoints and no bake, and not the fleet's alarms,
    which are in ALARM on the version it replaces; StartInstanceRefresh refuses an alarm in
    ALARM ("If the alarm state is INSUFFICIENT_DATA or ALARM, you receive an error when you
    try to start the instance refresh", user guide, "Undo changes with a manual or auto
    rollback")."""
    preferences: RefreshPreferencesTypeDef = {
        "MinHealthyPercentage": spec.min_healthy_percentage,
        "MaxHealthyPercentage": spec.max_healthy_percentage,
        "InstanceWarmup": spec.warmup_seconds,
        "SkipMatching": True,
        "AutoRollback": True,
        "BakeTime": 0 if back else spec.bake_seconds,
        "ScaleInProtectedInstances": "Refresh",
        "StandbyInstances": "Terminate",
    }
    if spec.checkpoint_pauses and not back:
        preferences["CheckpointPercentages"] = [*spec.checkpoint_pauses, 100]
        preferences["CheckpointDelay"] = spec.checkpoint_delay_seconds
    if spec.alarms and not back:
        preferences["AlarmSpecification"] = {"Alarms": spec.alarms}
    return preferences


def start_refresh(
    autoscaling: AutoScalingClient, state: ReleaseState, version: int
) -> tuple[str, bool]:
    """StartInstanceRefresh to `version` with the fleet's preferences: the refresh id, and
    whether this call started it. A retried step whose first attempt started the refresh
    meets InstanceRefreshInProgress: when the group's latest refresh is this release's
    (started since the release did, to `version`), it carries on with that one (False);
    any other refresh in progress is an error."""
    spec = state.fleet_spec
    slot = spec.slots[state.need_plan().target_slot]
    try:
        response = autoscaling.start_instance_refresh(
            AutoScalingGroupName=slot.group,
            Strategy="Rolling",
            DesiredConfiguration={
                "LaunchTemplate": {
                    "LaunchTemplateId": slot.launch_template,
                    "Version": str(version),
                }
            },
            Preferences=refresh_preferences(spec, back=state.is_rollback),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "InstanceRefreshInProgress":
            raise
        latest = fleet_calls.latest_refresh(autoscaling, slot.group)
        if latest is None or not _this_releases(latest, state, slot.launch_template, version):
            raise
        return str(latest["InstanceRefreshId"]), False
    return str(response["InstanceRefreshId"]), True


def _this_releases(
    refresh: InstanceRefreshTypeDef, state: ReleaseState, template: str, version: int
) -> bool:
    """The refresh started since this release did, to its launch template version."""
    wanted = refresh.get("DesiredConfiguration", {}).get("LaunchTemplate", {})
    return (
        _started(refresh) >= state.release.started_at
        and wanted.get("LaunchTemplateId") == template
        and wanted.get("Version") == str(version)
    )


def polled_refresh(
    autoscaling: AutoScalingClient, state: ReleaseState
) -> InstanceRefreshTypeDef | None:
    """The forward refresh, read when no event came in time: the group's latest refresh
    (None when it has none). The latest can be someone else's, started after this
    release's ended; then ForeignRefreshError, since its status says nothing of this
    release (the state machine records the release failed and leaves that refresh be)."""
    slot = state.fleet_spec.slots[state.need_plan().target_slot]
    version = state.need_version()
    latest = fleet_calls.latest_refresh(autoscaling, slot.group)
    if latest is not None and not _this_releases(latest, state, slot.launch_template, version):
        raise ForeignRefreshError(
            f"the latest instance refresh of {slot.group}, {_described(latest)}, is not this "
            f"release's (to version {version}, started since "
            f"{state.release.started_at.isoformat()}): someone else's refresh may be "
            "changing the fleet, left as it is"
        )
    return latest


def _described(refresh: InstanceRefreshTypeDef) -> str:
    wanted = refresh.get("DesiredConfiguration", {}).get("LaunchTemplate", {})
    to = (
        f"to {wanted.get('LaunchTemplateId')} version {wanted.get('Version')}"
        if wanted
        else "without a desired configuration"
    )
    started = _started(refresh).isoformat()
    return f"{refresh['InstanceRefreshId']} ({refresh['Status']}, {to}, started {started})"


def scale_target(
    autoscaling: AutoScalingClient, ssm: SSMClient, state: ReleaseState, version: int
) -> None:
    """The idle slot gets the new version and the active slot's capacity. Its version and
    minimum go to the controller's parameters first, so a deploy meanwhile keeps them."""
    plan = state.need_plan()
    spec = state.fleet_spec
    fleet, env = spec.name, state.environment
    put_parameter(
        ssm, slot_parameter(env, fleet, plan.target_slot, "launch-template-version"), str(version)
    )
    put_parameter(
        ssm, slot_parameter(env, fleet, plan.target_slot, "min-size"), str(plan.capacity.min)
    )
    slot = spec.slots[plan.target_slot]
    if plan.target_running:
        # The previous release's old slot, still warm: this release supersedes its
        # rollback window. Its instances run an older AMI and would count as healthy
        # targets, so they go before the new ones come.
        autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=slot.group, MinSize=0, DesiredCapacity=0
        )
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=slot.group,
        LaunchTemplate={"LaunchTemplateId": slot.launch_template, "Version": str(version)},
        MinSize=plan.capacity.min,
        MaxSize=plan.capacity.max,
        DesiredCapacity=plan.capacity.desired,
    )


def set_weights(
    elbv2: ElasticLoadBalancingv2Client, spec: FleetSpec, weights: dict[Slot, int]
) -> None:
    """ModifyListener: forward to the slots' target groups by `weights` (one call), in the
    order the fleet's template forwards to them."""
    groups = {spec.slots[s].target_group: weights[s] for s in in_listener_order(spec.slots)}
    fleet_calls.set_weights(elbv2, spec.listener, groups)


def empty_slot(
    autoscaling: AutoScalingClient, ssm: SSMClient, state: ReleaseState, slot: Slot
) -> None:
    """Scale a slot to 0, its controller-owned minimum first."""
    fleet_calls.empty_slot(
        autoscaling,
        ssm,
        minimum_parameter=slot_parameter(state.environment, state.fleet, slot, "min-size"),
        group=state.fleet_spec.slots[slot].group,
    )


def roll_back_traffic(
    elbv2: ElasticLoadBalancingv2Client,
    autoscaling: AutoScalingClient,
    ssm: SSMClient,
    state: ReleaseState,
) -> None:
    """blue_green/canary: every request back to the active slot first (one call), then the
    target slot scaled to 0. The parameters never held the new weights: nothing to undo."""
    plan = state.need_plan()
    set_weights(elbv2, state.fleet_spec, {plan.active_slot: 100, plan.target_slot: 0})
    empty_slot(autoscaling, ssm, state, plan.target_slot)


def roll_back_refresh(
    autoscaling: AutoScalingClient, state: ReleaseState
) -> tuple[str, str | None]:
    """rolling: undo the refresh. Returns what was done, and the refresh the state machine
    then waits for: `rollback` (RollbackInstanceRefresh of the running refresh, same id),
    `refresh` (a new refresh to the previous version, when the refresh had already ended;
    when AWS refuses a rollback, the refresh is cancelled and RefreshStillCancellingError
    raised, so the retried step starts that refresh) or `nothing` (no refresh of this
    release, or it already rolled back). A cancelled or failed refresh keeps the instances
    it replaced, so it is followed by a refresh back too; SkipMatching makes that replace
    only instances not on the previous version. A retried step that finds its own refresh
    back awaits it (or, Successful, has nothing left to undo): rolling that one back
    would put the new version back."""
    plan = state.need_plan()
    slot = state.fleet_spec.slots[plan.target_slot]
    latest = fleet_calls.latest_refresh(autoscaling, slot.group)
    if latest is None or _started(latest) < state.release.started_at:
        return "nothing", None  # none, or an earlier release's: this one changed no instance
    status, refresh_id = latest["Status"], str(latest["InstanceRefreshId"])
    if _this_releases(latest, state, slot.launch_template, plan.source_version):
        return ("nothing", None) if status == "Successful" else ("refresh", refresh_id)
    if status == "RollbackSuccessful":
        return "nothing", None
    if status == "RollbackInProgress":
        return "rollback", refresh_id
    if status == "Cancelling":
        raise RefreshStillCancellingError(f"refresh of {slot.group} is still cancelling")
    if status in ACTIVE_REFRESH_STATUSES:
        try:
            response = autoscaling.rollback_instance_refresh(AutoScalingGroupName=slot.group)
            return "rollback", str(response["InstanceRefreshId"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "IrreversibleInstanceRefresh":
                raise
            autoscaling.cancel_instance_refresh(AutoScalingGroupName=slot.group)
            # A refresh takes time to cancel; the state machine retries this step, which
            # then starts the refresh back from the Cancelled refresh.
            raise RefreshStillCancellingError(
                f"refresh of {slot.group} cannot roll back; cancelling it first"
            ) from None
    preferences = refresh_preferences(state.fleet_spec, back=True)
    preferences["AutoRollback"] = False
    response = autoscaling.start_instance_refresh(
        AutoScalingGroupName=slot.group,
        Strategy="Rolling",
        DesiredConfiguration={
            "LaunchTemplate": {
                "LaunchTemplateId": slot.launch_template,
                "Version": str(plan.source_version),
            }
        },
        Preferences=preferences,
    )
    return "refresh", str(response["InstanceRefreshId"])


def poll_rollback(
    autoscaling: AutoScalingClient, state: ReleaseState, polls: int
) -> RollbackRefresh:
    """The rollback's refresh, read after its event or when none came in time (one call).
    The event only says that a refresh of the group ended, so the refresh is read here:
    the fleet is back only on the status BACK names for what Rollback did. A group whose
    latest refresh is not the one Rollback started is someone else's to change: not back,
    no poll left. A refresh still running leaves `polls` - 1 more polls."""
    rolled = state.rollback
    if rolled is None or rolled.refresh_id is None:
        raise MalformedStepError("the state has no rollback refresh to poll")
    previous = state.rollback_refresh
    left = max((previous.polls_left if previous else polls) - 1, 0)
    group = state.fleet_spec.slots[state.need_plan().target_slot].group
    latest = fleet_calls.latest_refresh(autoscaling, group)
    if latest is None or latest["InstanceRefreshId"] != rolled.refresh_id:
        found = (
            "no refresh"
            if latest is None
            else f"{latest['InstanceRefreshId']} ({latest['Status']})"
        )
        return RollbackRefresh(
            status="NotThisRelease",
            summary=f"the latest instance refresh of {group} is {found}, not the rollback's "
            f"{rolled.refresh_id}: someone else's refresh may be changing the fleet",
        )
    status, reason = latest["Status"], latest.get("StatusReason", "")
    back = status == BACK.get(rolled.action)
    what = f"the rollback's instance refresh {rolled.refresh_id}"
    if back:
        summary = ""
    elif status in ACTIVE_REFRESH_STATUSES:
        summary = f"{what} is still {status} after {polls - left} polls"
    else:
        summary = f"{what} ended {status}: {reason or 'no reason given'}"
    return RollbackRefresh(
        status=status, reason=reason, polls_left=left, back=back, summary=summary[:500]
    )


def _started(refresh: InstanceRefreshTypeDef) -> datetime:
    return parse_time(refresh["StartTime"])


def commit(ssm: SSMClient, state: ReleaseState, plan: Plan, version: int) -> None:
    """After success: the controller's parameters say what now serves (pointer last, so a
    crash in between never points at an AMI the slots do not run)."""
    env, fleet = state.environment, state.fleet
    target = plan.target_slot
    put_parameter(ssm, slot_parameter(env, fleet, target, "launch-template-version"), str(version))
    if state.fleet_spec.strategy != "rolling":
        put_parameter(ssm, slot_parameter(env, fleet, target, "weight"), "100")
        put_parameter(ssm, slot_parameter(env, fleet, plan.active_slot, "weight"), "0")
    put_parameter(ssm, release_pointer(env, fleet), state.ami)


def uncommit(ssm: SSMClient, state: ReleaseState, plan: Plan) -> None:
    """What `commit` wrote, undone for a release a rollback took while it succeeded: the
    active slot serves the AMI before the release (pointer last, as in `commit`)."""
    env, fleet = state.environment, state.fleet
    if state.fleet_spec.strategy != "rolling":
        put_parameter(ssm, slot_parameter(env, fleet, plan.active_slot, "weight"), "100")
        put_parameter(ssm, slot_parameter(env, fleet, plan.target_slot, "weight"), "0")
    put_parameter(ssm, release_pointer(env, fleet), plan.from_ami)
