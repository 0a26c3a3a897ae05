"""Grants scoped by a resource's tags, as the release controller's are (phoenix/fleet/
grants.py): the embedded AWS evaluates `aws:ResourceTag/<key>` with the tags of the launch
template (CreateLaunchTemplateVersion, and RunInstances when Auto Scaling launches from it),
of the role passed to EC2, and of the listener; and CloudFormation tags a listener."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import local
from tests.local.test_iam import REGION, World, as_function

TAG = "aws:ResourceTag/phoenix:fleet"
SANDBOX = {"StringLike": {TAG: "sandbox/*"}}
ARN = f"arn:aws:ec2:{REGION}:123456789012"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with mock_aws():
        local.install_extensions()
        made = World()
        fleet: Any = [{"Key": "phoenix:fleet", "Value": "sandbox/web"}]
        made.ec2.create_tags(Resources=[made.template_id], Tags=fleet)
        made.iam.tag_role(RoleName="instance", Tags=fleet)
        yield made


def _environment_grants(world: World, condition: dict[str, Any]) -> list[dict[str, Any]]:
    """What grant_environment_fleets gives, with `condition` as the fleets' tag condition."""
    launched = [f"{ARN}:{kind}/*" for kind in ("instance", "volume", "network-interface")]
    launched += [f"{ARN}:{kind}/*" for kind in ("security-group", "subnet")]
    launched += [f"arn:aws:ec2:{REGION}::image/*"]
    return [
        {
            "Effect": "Allow",
            "Action": ["autoscaling:UpdateAutoScalingGroup"],
            "Resource": "*",
            "Condition": {"StringEquals": {TAG: "web"}},
        },
        {
            "Effect": "Allow",
            "Action": ["ec2:CreateLaunchTemplateVersion", "ec2:RunInstances"],
            "Resource": f"{ARN}:launch-template/*",
            "Condition": condition,
        },
        {
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": launched,
            "Condition": {"ArnLike": {"ec2:LaunchTemplate": f"{ARN}:launch-template/*"}},
        },
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::123456789012:role/*",
            "Condition": condition | {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        },
        {
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": launched[:2],
            "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
        },
    ]


def test_a_template_tagged_as_the_environment_s_fleet_may_be_launched_and_versioned(
    world: World,
) -> None:
    world.grant(*_environment_grants(world, SANDBOX))
    world.point_group_at_template()
    as_function(
        lambda: boto3.client("ec2", region_name=REGION).create_launch_template_version(
            LaunchTemplateId=world.template_id, SourceVersion="1", LaunchTemplateData={}
        )
    )


def test_another_environment_s_tag_refuses_the_template_and_its_launch(world: World) -> None:
    world.grant(*_environment_grants(world, {"StringLike": {TAG: "production/*"}}))
    with pytest.raises(ClientError) as refused:
        world.point_group_at_template()
    assert "You are not authorized to use launch template" in str(refused.value)
    assert "launch-template/" in str(refused.value)
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        as_function(
            lambda: boto3.client("ec2", region_name=REGION).create_launch_template_version(
                LaunchTemplateId=world.template_id, SourceVersion="1", LaunchTemplateData={}
            )
        )


def test_a_role_without_the_fleet_tag_is_not_passed(world: World) -> None:
    world.grant(*_environment_grants(world, SANDBOX))
    world.iam.untag_role(RoleName="instance", TagKeys=["phoenix:fleet"])
    try:
        with pytest.raises(ClientError, match="iam:PassRole"):
            world.point_group_at_template()
    finally:
        world.iam.tag_role(
            RoleName="instance", Tags=[{"Key": "phoenix:fleet", "Value": "sandbox/web"}]
        )


def _listener(name: str, tags: list[dict[str, str]]) -> str:
    ec2, elbv2 = boto3.client("ec2", region_name=REGION), boto3.client("elbv2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{n}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in ((1, "a"), (2, "b"))
    ]
    balancer = elbv2.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]
    group = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc)
    arn = group["TargetGroups"][0]["TargetGroupArn"]
    action: Any = [{"Type": "forward", "TargetGroupArn": arn}]
    tagged: dict[str, Any] = {"Tags": tags} if tags else {}
    listener = elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=action,
        **tagged,
    )
    return str(listener["Listeners"][0]["ListenerArn"])


def test_a_listener_is_modified_only_with_the_fleet_tag(world: World) -> None:
    tagged = _listener("tagged", [{"Key": "phoenix:fleet", "Value": "sandbox/web"}])
    untagged = _listener("untagged", [])
    world.grant(
        {
            "Effect": "Allow",
            "Action": "elasticloadbalancing:ModifyListener",
            "Resource": f"arn:aws:elasticloadbalancing:{REGION}:123456789012:listener/app/*",
            "Condition": SANDBOX,
        }
    )

    def modify(arn: str) -> Any:
        return as_function(
            lambda: boto3.client("elbv2", region_name=REGION).modify_listener(
                ListenerArn=arn, Port=8080
            )
        )

    modify(tagged)
    with pytest.raises(ClientError, match="AccessDenied"):
        modify(untagged)


def test_cloudformation_tags_a_listener_as_its_template_says(world: World) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{n}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in ((1, "a"), (2, "b"))
    ]
    tags = [{"Key": "phoenix:fleet", "Value": "sandbox/web"}]
    template = {
        "Resources": {
            "Balancer": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {"Subnets": subnets},
            },
            "Group": {
                "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                "Properties": {"Port": 80, "Protocol": "HTTP", "VpcId": vpc},
            },
            "Listener": {
                "Type": "AWS::ElasticLoadBalancingV2::Listener",
                "Properties": {
                    "LoadBalancerArn": {"Ref": "Balancer"},
                    "Port": 80,
                    "Protocol": "HTTP",
                    "DefaultActions": [{"Type": "forward", "TargetGroupArn": {"Ref": "Group"}}],
                    "Tags": tags,
                },
            },
        }
    }
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName="tagged-listener", TemplateBody=json.dumps(template))
    resources = cloudformation.describe_stack_resources(StackName="tagged-listener")
    (listener,) = [
        r["PhysicalResourceId"]
        for r in resources["StackResources"]
        if r["ResourceType"] == "AWS::ElasticLoadBalancingV2::Listener"
    ]
    described = boto3.client("elbv2", region_name=REGION).describe_tags(ResourceArns=[listener])
    assert described["TagDescriptions"][0]["Tags"] == tags
