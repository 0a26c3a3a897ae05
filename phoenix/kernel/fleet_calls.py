"""The calls on a fleet that the release and the rollback both make, defined once.

A fleet's traffic is its listener's forward action, weighted between the slots' target
groups; a slot is emptied by its controller-owned minimum (an SSM parameter, so a later
deploy keeps it) and then its Auto Scaling group.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types_boto3_autoscaling.client import AutoScalingClient
    from types_boto3_autoscaling.type_defs import AutoScalingGroupTypeDef, InstanceRefreshTypeDef
    from types_boto3_cloudwatch.client import CloudWatchClient
    from types_boto3_ec2.client import EC2Client
    from types_boto3_ec2.type_defs import LaunchTemplateVersionTypeDef
    from types_boto3_elbv2.client import ElasticLoadBalancingv2Client
    from types_boto3_elbv2.type_defs import ActionTypeDef, TargetGroupTupleTypeDef
    from types_boto3_ssm.client import SSMClient

# Instance refresh statuses in which a refresh is still running (DescribeInstanceRefreshes):
# no other refresh can start, and the release's waits go on.
ACTIVE_REFRESH_STATUSES = ("Pending", "InProgress", "Baking", "Cancelling", "RollbackInProgress")


def weighted_forward(weights: Iterable[tuple[str, Any]]) -> list[ActionTypeDef]:
    """A listener's DefaultActions forwarding to (target group, weight) pairs, as
    ModifyListener takes them. Weights are numbers here, and CloudFormation references or
    Step Functions paths where the constructs write the same action."""
    groups: list[TargetGroupTupleTypeDef] = [
        {"TargetGroupArn": group, "Weight": weight} for group, weight in weights
    ]
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]


def set_weights(
    elbv2: ElasticLoadBalancingv2Client, listener: str, weights: dict[str, int]
) -> None:
    """ModifyListener: forward by `weights` (target group ARN -> weight), one call."""
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=weighted_forward(weights.items()))


def put_parameter(ssm: SSMClient, name: str, value: str) -> None:
    """Overwrite one of the controller's String parameters."""
    ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


def empty_slot(
    autoscaling: AutoScalingClient, ssm: SSMClient, *, minimum_parameter: str, group: str
) -> None:
    """Scale a slot to 0, its controller-owned minimum first (a deploy meanwhile keeps 0)."""
    put_parameter(ssm, minimum_parameter, "0")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=group, MinSize=0, DesiredCapacity=0)


def latest_refresh(autoscaling: AutoScalingClient, group: str) -> InstanceRefreshTypeDef | None:
    """The group's most recent instance refresh, or None."""
    refreshes = autoscaling.describe_instance_refreshes(AutoScalingGroupName=group, MaxRecords=1)
    latest = refreshes.get("InstanceRefreshes", [])
    return latest[0] if latest else None


def alarms_in_alarm(cloudwatch: CloudWatchClient, names: list[str]) -> list[str]:
    """Which of the alarms are in ALARM now (one DescribeAlarms; none for no names)."""
    if not names:
        return []
    found = cloudwatch.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm"])
    return [a["AlarmName"] for a in found["MetricAlarms"] if a["StateValue"] == "ALARM"]


def group_template(
    autoscaling: AutoScalingClient, ec2: EC2Client, group: str, template: str
) -> tuple[AutoScalingGroupTypeDef, str, LaunchTemplateVersionTypeDef]:
    """A group, the version of its launch template (`template`) it uses, and that version."""
    (found,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ]
    version = str(found.get("LaunchTemplate", {}).get("Version", ""))
    (data,) = ec2.describe_launch_template_versions(LaunchTemplateId=template, Versions=[version])[
        "LaunchTemplateVersions"
    ]
    return found, version, data
