"""The fleet calls a rollback makes: traffic back, refresh back, stop, empty, restore.
Each is idempotent: the same call again leaves the fleet the same."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from phoenix.kernel import fleet_calls
from phoenix.kernel.fleet_calls import put_parameter
from phoenix.kernel.names import Slot, in_listener_order, release_pointer, slot_parameter
from phoenix.rollback.runtime.models import RollbackFleet

if TYPE_CHECKING:
    from types_boto3_autoscaling.client import AutoScalingClient
    from types_boto3_elbv2.client import ElasticLoadBalancingv2Client
    from types_boto3_ssm.client import SSMClient
    from types_boto3_stepfunctions.client import SFNClient


def weights_back(
    elbv2: ElasticLoadBalancingv2Client, fleet: RollbackFleet, serve: Slot, drop: Slot
) -> None:
    """ModifyListener: every request to `serve`'s target group (the slots in the order the
    fleet's template forwards to them, as each ModifyListener of the controller)."""
    weights = {serve: 100, drop: 0}
    groups = {fleet.slots[s].target_group: weights[s] for s in in_listener_order(fleet.slots)}
    fleet_calls.set_weights(elbv2, fleet.listener, groups)


ROLLING_BACK = {"RollbackInProgress", "RollbackSuccessful"}


def refresh_back(autoscaling: AutoScalingClient, fleet: RollbackFleet) -> str | None:
    """RollbackInstanceRefresh of the rolling slot: what was done, or None when the
    refresh is neither rolling back nor can be rolled back (it ended on the new version,
    or AWS refuses: the release's own gate and Catch path undo it, with a refresh back
    or a cancel first, so it is left to them)."""
    group = fleet.slots["blue"].group
    try:
        autoscaling.rollback_instance_refresh(AutoScalingGroupName=group)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        latest = autoscaling.describe_instance_refreshes(AutoScalingGroupName=group, MaxRecords=1)
        found = latest.get("InstanceRefreshes", [])
        if found and found[0]["Status"] in ROLLING_BACK:
            return f"{found[0]['Status']} already ({code})"  # AutoRollback got there first
        return None
    return "rolled back"


def stop_execution(
    stepfunctions: SFNClient, state_machine_arn: str, release_id: str, why: str
) -> None:
    arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{release_id}"
    try:
        stepfunctions.stop_execution(executionArn=arn, error="RolledBack", cause=why[:32000])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
            raise


def empty_slot(
    autoscaling: AutoScalingClient,
    ssm: SSMClient,
    environment: str,
    fleet: RollbackFleet,
    slot: Slot,
) -> None:
    fleet_calls.empty_slot(
        autoscaling,
        ssm,
        minimum_parameter=slot_parameter(environment, fleet.name, slot, "min-size"),
        group=fleet.slots[slot].group,
    )


def restore_window(
    ssm: SSMClient, environment: str, fleet: RollbackFleet, window: dict[str, Any]
) -> None:
    """The controller's parameters say the old slot serves the previous AMI again."""
    old, new = window["old_slot"], window["new_slot"]
    put_parameter(ssm, slot_parameter(environment, fleet.name, old, "weight"), "100")
    put_parameter(ssm, slot_parameter(environment, fleet.name, new, "weight"), "0")
    put_parameter(ssm, release_pointer(environment, fleet.name), str(window["previous_ami"]))
