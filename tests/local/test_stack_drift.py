"""Drift detection in the embedded AWS (local/stack_drift.py): a stack's resources edited
by hand are found as CloudFormation reports them, what a dynamic reference sets is left
alone, and a caller that may not read a resource gets a failed detection, not a result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import install_extensions
from tests.local.test_iam import TRUST, as_function, deploy_function

REGION = "us-east-1"
STACK = "drifting"


CLIENTS = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0",
           "Description": "clients"}  # fmt: skip


def _template(ami: str) -> dict[str, Any]:
    group_id = {"Fn::GetAtt": ["Instances", "GroupId"]}
    return {
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
            "Subnet": {
                "Type": "AWS::EC2::Subnet",
                "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.0.1.0/24"},
            },
            "Balancer": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {
                    "GroupDescription": "load balancer",
                    "VpcId": {"Ref": "Vpc"},
                    "SecurityGroupIngress": [CLIENTS],
                },
            },
            "Instances": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {
                    "GroupDescription": "instances",
                    "VpcId": {"Ref": "Vpc"},
                    # replaces the default egress rule (local/security_group_rules.py)
                    "SecurityGroupEgress": [
                        {"IpProtocol": "-1", "CidrIp": "0.0.0.0/0", "Description": "anywhere"}
                    ],
                },
            },
            "FromBalancer": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "GroupId": group_id,
                    "IpProtocol": "tcp",
                    "FromPort": 80,
                    "ToPort": 80,
                    "SourceSecurityGroupId": {"Fn::GetAtt": ["Balancer", "GroupId"]},
                    "Description": "load balancer to instances",
                },
            },
            "Template": {
                "Type": "AWS::EC2::LaunchTemplate",
                "Properties": {"LaunchTemplateData": {"ImageId": ami, "InstanceType": "t3.micro"}},
            },
            "Group": {
                "Type": "AWS::AutoScaling::AutoScalingGroup",
                "Properties": {
                    "MinSize": "{{resolve:ssm:/test/min-size}}",
                    "MaxSize": "4",
                    "LaunchTemplate": {
                        "LaunchTemplateId": {"Ref": "Template"},
                        "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]},
                    },
                    "VPCZoneIdentifier": [{"Ref": "Subnet"}],
                },
            },
        }
    }


@pytest.fixture
def world() -> Iterator[dict[str, Any]]:
    with mock_aws():
        install_extensions(None)
        ssm: Any = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="/test/min-size", Value="1", Type="String")
        ec2: Any = boto3.client("ec2", region_name=REGION)
        # any AMI ID: moto launches it (its default AMIs may be off for the session)
        template = json.dumps(_template("ami-0123456789abcdef0"))
        cloudformation: Any = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName=STACK, TemplateBody=template)
        resources = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId")
            for r in cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
        }
        yield {
            "cloudformation": cloudformation,
            "ec2": ec2,
            "autoscaling": boto3.client("autoscaling", region_name=REGION),
            "resources": resources,
        }


def _detect(cloudformation: Any, **more: Any) -> dict[str, Any]:
    detection = cloudformation.detect_stack_drift(StackName=STACK, **more)
    status: dict[str, Any] = cloudformation.describe_stack_drift_detection_status(
        StackDriftDetectionId=detection["StackDriftDetectionId"]
    )
    return status


def _drifts(cloudformation: Any, *statuses: str) -> dict[str, dict[str, Any]]:
    filters = {"StackResourceDriftStatusFilters": list(statuses)} if statuses else {}
    answer = cloudformation.describe_stack_resource_drifts(StackName=STACK, **filters)
    return {d["LogicalResourceId"]: d for d in answer["StackResourceDrifts"]}


def test_a_stack_as_deployed_is_in_sync_and_only_readable_types_are_listed(
    world: dict[str, Any],
) -> None:
    status = _detect(world["cloudformation"])
    assert (status["DetectionStatus"], status["StackDriftStatus"]) == (
        "DETECTION_COMPLETE",
        "IN_SYNC",
    )
    drifts = _drifts(world["cloudformation"])
    assert set(drifts) == {"Balancer", "Instances", "FromBalancer", "Group"}
    assert {d["StackResourceDriftStatus"] for d in drifts.values()} == {"IN_SYNC"}
    assert json.loads(drifts["Group"]["ExpectedProperties"])["MaxSize"] == "4"


def test_edits_by_hand_are_modified_or_deleted_and_a_dynamic_reference_is_not_compared(
    world: dict[str, Any],
) -> None:
    resources, ec2 = world["resources"], world["ec2"]
    # MinSize comes from a dynamic reference: changing it is not drift
    world["autoscaling"].update_auto_scaling_group(
        AutoScalingGroupName=resources["Group"], MaxSize=10, MinSize=3
    )
    ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
           "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}  # fmt: skip
    ec2.authorize_security_group_ingress(GroupId=resources["Balancer"], IpPermissions=[ssh])
    ec2.revoke_security_group_ingress(
        GroupId=resources["Instances"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                        "UserIdGroupPairs": [{"GroupId": resources["Balancer"],
                                              "Description": "load balancer to instances"}]}],
    )  # fmt: skip
    status = _detect(world["cloudformation"])
    assert (status["StackDriftStatus"], status["DriftedStackResourceCount"]) == ("DRIFTED", 3)
    drifts = _drifts(world["cloudformation"])
    assert drifts["Group"]["StackResourceDriftStatus"] == "MODIFIED"
    assert drifts["Group"]["PropertyDifferences"] == [
        {"PropertyPath": "/MaxSize", "ExpectedValue": "4", "ActualValue": "10",
         "DifferenceType": "NOT_EQUAL"}
    ]  # fmt: skip
    (added,) = drifts["Balancer"]["PropertyDifferences"]
    assert added["DifferenceType"] == "ADD"
    assert added["PropertyPath"].startswith("/SecurityGroupIngress/")
    assert json.loads(added["ActualValue"]) == {
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0",
        "Description": None,
    }  # fmt: skip
    assert drifts["FromBalancer"]["StackResourceDriftStatus"] == "DELETED"
    assert "ActualProperties" not in drifts["FromBalancer"]
    assert drifts["Instances"]["StackResourceDriftStatus"] == "IN_SYNC"
    assert set(_drifts(world["cloudformation"], "MODIFIED")) == {"Group", "Balancer"}


def test_the_logical_ids_given_are_the_ones_checked_and_pages_follow(
    world: dict[str, Any],
) -> None:
    cloudformation = world["cloudformation"]
    _detect(cloudformation, LogicalResourceIds=["Group", "Balancer"])
    assert set(_drifts(cloudformation)) == {"Group", "Balancer"}
    first = cloudformation.describe_stack_resource_drifts(StackName=STACK, MaxResults=1)
    second = cloudformation.describe_stack_resource_drifts(
        StackName=STACK, MaxResults=1, NextToken=first["NextToken"]
    )
    assert "NextToken" not in second
    listed = first["StackResourceDrifts"] + second["StackResourceDrifts"]
    assert {d["LogicalResourceId"] for d in listed} == {"Group", "Balancer"}
    with pytest.raises(ClientError, match="ValidationError"):
        cloudformation.detect_stack_drift(StackName=STACK, LogicalResourceIds=["Nothing"])
    with pytest.raises(ClientError, match="length less than or equal to 200"):
        cloudformation.detect_stack_drift(StackName=STACK, LogicalResourceIds=["Group"] * 201)
    with pytest.raises(ClientError, match="between 1 and 100"):
        cloudformation.describe_stack_resource_drifts(StackName=STACK, MaxResults=101)


def _function_with(actions: list[str]) -> None:
    """The function `as_function` runs as, with a role that allows `actions` on `*`."""
    iam: Any = boto3.client("iam")
    role = iam.create_role(RoleName="drift", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    policy = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}  # fmt: skip
    iam.put_role_policy(RoleName="drift", PolicyName="drift", PolicyDocument=json.dumps(policy))
    deploy_function(role["Arn"])


def test_a_caller_that_may_not_read_a_resource_gets_a_failed_detection(
    world: dict[str, Any],
) -> None:
    # Given a function that may read security groups, not Auto Scaling groups
    _function_with(
        [
            "cloudformation:DetectStackDrift",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
        ]
    )
    cloudformation = world["cloudformation"]
    detection = as_function(lambda: cloudformation.detect_stack_drift(StackName=STACK))
    status = cloudformation.describe_stack_drift_detection_status(
        StackDriftDetectionId=detection["StackDriftDetectionId"]
    )
    assert status["DetectionStatus"] == "DETECTION_FAILED"
    assert (
        "[Group]: not authorized to perform autoscaling:Describe" in status["DetectionStatusReason"]
    )
    assert set(_drifts(cloudformation)) == {"Balancer", "Instances", "FromBalancer"}
    # and a later detection by another caller is not: what one call lacked is its own
    again = _detect(cloudformation)
    assert again["DetectionStatus"] == "DETECTION_COMPLETE"
    assert "Group" in _drifts(cloudformation)


def test_detecting_or_reading_drift_is_authorized_on_the_stack(world: dict[str, Any]) -> None:
    _function_with(["ec2:DescribeSecurityGroups"])
    cloudformation = world["cloudformation"]
    with pytest.raises(ClientError, match="cloudformation:DetectStackDrift on resource: arn:aws:"):
        as_function(lambda: cloudformation.detect_stack_drift(StackName=STACK))
    with pytest.raises(ClientError, match="cloudformation:DescribeStackResourceDrifts"):
        as_function(lambda: cloudformation.describe_stack_resource_drifts(StackName=STACK))
