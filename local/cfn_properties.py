"""Properties moto's CloudFormation drops, set as CloudFormation sets them. Drift detection
(local.stack_drift) compares them with the template, so a dropped one would be drift.

Security groups: moto creates a group's `SecurityGroupIngress` rules without their
`Description`, and ignores `SecurityGroupEgress`, leaving the default egress rule; an
AWS::EC2::SecurityGroupIngress from another group loses its `Description` too. The
CloudFormation user guide (AWS::EC2::SecurityGroup) says otherwise: each rule has the
description given
("Description: Updates the description of an ingress (inbound) security group rule"),
and "When you specify a VPC security group, Amazon EC2 creates a default egress rule
that allows egress traffic on all ports and IP protocols to any location. The default
rule is removed only when you specify one or more egress rules", which then are the
group's. Here the group is created with its rules as AWS would, through moto's EC2
backend.

Auto Scaling groups: moto's CloudFormation ignores `CapacityRebalance` ("Indicates
whether Capacity Rebalancing is enabled", CloudFormation user guide,
AWS::AutoScaling::AutoScalingGroup), so a group made with it describes it as false.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.autoscaling.models import FakeAutoScalingGroup
from moto.ec2.models import ec2_backends
from moto.ec2.models.security_groups import SecurityGroup, SecurityGroupIngress

ALL = "0.0.0.0/0"


def _arguments(rule: dict[str, Any], peer: str) -> dict[str, Any]:
    """A template rule as moto's backend takes it."""
    description = {"Description": rule["Description"]} if "Description" in rule else {}
    protocol = str(rule["IpProtocol"])
    every_port = protocol == "-1"
    ranges = [{key: rule[key]} | description for key in ("CidrIp", "CidrIpv6") if key in rule]
    groups = [{"GroupId": rule[f"{peer}SecurityGroupId"]} | description] if (
        f"{peer}SecurityGroupId" in rule
    ) else []  # fmt: skip
    lists = [{"PrefixListId": rule[f"{peer}PrefixListId"]} | description] if (
        f"{peer}PrefixListId" in rule
    ) else []  # fmt: skip
    return {
        "ip_protocol": protocol,
        "from_port": None if every_port else rule.get("FromPort"),
        "to_port": None if every_port else rule.get("ToPort"),
        "ip_ranges": ranges,
        "source_groups": groups,
        "prefix_list_ids": lists,
    }


@functools.cache
def install() -> None:
    original = SecurityGroup.create_from_cloudformation_json

    @functools.wraps(original)
    def create(
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> SecurityGroup:
        properties = cloudformation_json["Properties"]
        bare = {k: v for k, v in properties.items() if k != "SecurityGroupIngress"}
        group: SecurityGroup = original(
            resource_name, {**cloudformation_json, "Properties": bare}, account_id, region_name,
            **kwargs,
        )  # fmt: skip
        backend = ec2_backends[account_id][region_name]
        vpc = properties.get("VpcId")
        for rule in properties.get("SecurityGroupIngress", []):
            arguments = _arguments(rule, "Source")
            backend.authorize_security_group_ingress(group.id, **arguments, vpc_id=vpc)
        egress = properties.get("SecurityGroupEgress", [])
        if egress and vpc:
            # moto's backend takes no ports for every protocol ("-1"), typed as text
            every: Any = None
            backend.revoke_security_group_egress(
                group.id, "-1", every, every, [{"CidrIp": ALL}], vpc_id=vpc
            )
        for rule in egress:
            arguments = _arguments(rule, "Destination")
            backend.authorize_security_group_egress(group.id, **arguments, vpc_id=vpc)
        return group

    def create_rule(
        resource_name: str,  # noqa: ARG001
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,  # noqa: ARG001
    ) -> SecurityGroupIngress:
        properties = cloudformation_json["Properties"]
        backend = ec2_backends[account_id][region_name]
        if properties.get("GroupId"):
            (group,) = backend.describe_security_groups(group_ids=[properties["GroupId"]])
        else:
            (group,) = backend.describe_security_groups(groupnames=[properties["GroupName"]])
        backend.authorize_security_group_ingress(group.id, **_arguments(properties, "Source"))
        made: SecurityGroupIngress = SecurityGroupIngress(group, properties)  # type: ignore[abstract]
        return made

    SecurityGroup.create_from_cloudformation_json = staticmethod(create)  # type: ignore[method-assign]
    SecurityGroupIngress.create_from_cloudformation_json = staticmethod(create_rule)  # type: ignore[method-assign]
    made = FakeAutoScalingGroup.create_from_cloudformation_json

    @functools.wraps(made)
    def create_group(
        resource_name: str, cloudformation_json: Any, account_id: str, region_name: str,
        **kwargs: Any,
    ) -> FakeAutoScalingGroup:  # fmt: skip
        group: FakeAutoScalingGroup = made(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        rebalance = cloudformation_json["Properties"].get("CapacityRebalance", False)
        group.capacity_rebalance = str(rebalance).lower() == "true"
        return group

    FakeAutoScalingGroup.create_from_cloudformation_json = staticmethod(create_group)  # type: ignore[method-assign]
