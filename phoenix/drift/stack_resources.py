"""Which of a fleet's resources the drift check asks CloudFormation to compare with their
template (DetectStackDrift), and what reading them asks of the check's role.

CloudFormation reads each resource it checks with the caller's credentials, so the role
needs the read permissions of each type: those of the type's read handler in its
CloudFormation resource schema (the CloudFormation registry's schemas, as `aws
cloudformation describe-type` shows them). The types are what a fleet serves and is
reached through: its groups, target groups, load balancer, listener and security groups.
Their read calls support no resource-level permissions, so they are granted on `*`.

The fleet's registry entry lists their logical IDs, so they are kept few: the rules
between a fleet's two security groups (AWS::EC2::SecurityGroupIngress and Egress, whose
generated logical IDs are long) are left out; a rule revoked there fails the target
groups' health checks, which the fleet's alarms watch. A fleet has at most 9 of them
(blue/green and canary: two security groups, the load balancer, its listener, two target
groups and two groups; an HTTPS fleet's redirect listener adds one), so the 12 fleets of
a stack stay well under DetectStackDrift's 200 logical IDs.
"""

from __future__ import annotations

from aws_cdk import CfnResource, Stack

from phoenix.fleet.immutable_fleet import ImmutableFleet

_ELB = "elasticloadbalancing"
STACK_DRIFT_READS: dict[str, tuple[str, ...]] = {
    # the schema also lists managed-fleets:Get*, of a service the Service Authorization
    # Reference does not list: no policy can allow it, so it is not granted
    "AWS::AutoScaling::AutoScalingGroup": ("autoscaling:Describe*",),
    "AWS::EC2::SecurityGroup": ("ec2:DescribeSecurityGroups",),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (
        f"{_ELB}:DescribeLoadBalancers",
        f"{_ELB}:DescribeLoadBalancerAttributes",
        f"{_ELB}:DescribeCapacityReservation",
        f"{_ELB}:DescribeTags",
    ),
    "AWS::ElasticLoadBalancingV2::Listener": (
        f"{_ELB}:DescribeListeners",
        f"{_ELB}:DescribeListenerAttributes",
        f"{_ELB}:DescribeTags",
    ),
    "AWS::ElasticLoadBalancingV2::TargetGroup": (
        f"{_ELB}:DescribeTargetGroups",
        f"{_ELB}:DescribeTargetGroupAttributes",
        f"{_ELB}:DescribeTargetHealth",
        f"{_ELB}:DescribeTags",
    ),
}
# DetectStackDrift's limit on the logical IDs of one detection (CloudFormation API
# reference, DetectStackDrift: LogicalResourceIds, at most 200 items).
MAX_LOGICAL_IDS = 200


def drift_checked(fleet: ImmutableFleet) -> list[str]:
    """The logical IDs of the fleet's resources the drift check has compared."""
    stack = Stack.of(fleet)
    return sorted(
        stack.resolve(stack.get_logical_id(child))
        for child in fleet.node.find_all()
        if isinstance(child, CfnResource) and child.cfn_resource_type in STACK_DRIFT_READS
    )


def read_permissions() -> list[str]:
    """Every read permission the checked types ask for."""
    return sorted({action for actions in STACK_DRIFT_READS.values() for action in actions})
