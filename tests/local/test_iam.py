"""IAM enforced on handlers' calls in the embedded AWS (local/iam.py): each call is
authorized against the calling function's role, with what AWS checks implicitly."""

from __future__ import annotations

import io
import itertools
import json
import threading
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import local
from local.api_calls import LAMBDA_THREAD

REGION = "us-east-1"
FUNCTION = "phoenix-test-deploy"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def as_function(call: Callable[[], Any]) -> Any:
    """Run `call` as the handler of FUNCTION runs (its thread), returning or raising."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except Exception as error:
            outcome["error"] = error

    worker = threading.Thread(target=run, name=f"{LAMBDA_THREAD}{FUNCTION}")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def deploy_function(role_arn: str) -> None:
    """FUNCTION deployed with `role_arn`, the role `as_function`'s calls are authorized with."""
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role_arn,
        Handler="index.handler",
        Code={"ZipFile": package.getvalue()},
    )


class World:
    def __init__(self) -> None:
        self.iam = boto3.client("iam")
        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.autoscaling = boto3.client("autoscaling", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        role = self.iam.create_role(RoleName="deploy", AssumeRolePolicyDocument=json.dumps(TRUST))
        self.role_arn = role["Role"]["Arn"]
        deploy_function(self.role_arn)
        profile_role = self.iam.create_role(
            RoleName="instance", AssumeRolePolicyDocument=json.dumps(TRUST)
        )
        self.instance_role_arn = profile_role["Role"]["Arn"]
        self.iam.create_instance_profile(InstanceProfileName="instance")
        self.iam.add_role_to_instance_profile(InstanceProfileName="instance", RoleName="instance")
        self.ami = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        template = self.ec2.create_launch_template(
            LaunchTemplateName="web",
            LaunchTemplateData={
                "ImageId": self.ami,
                "InstanceType": "t3.micro",
                "IamInstanceProfile": {"Name": "instance"},
                "TagSpecifications": [
                    {
                        "ResourceType": "instance",
                        "Tags": [{"Key": "phoenix:fleet", "Value": "web"}],
                    },
                    {"ResourceType": "volume", "Tags": [{"Key": "phoenix:fleet", "Value": "web"}]},
                ],
            },
        )
        self.template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        self.template_arn = f"arn:aws:ec2:{REGION}:123456789012:launch-template/{self.template_id}"
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="web",
            LaunchTemplate={"LaunchTemplateId": self.template_id, "Version": "1"},
            MinSize=0,
            MaxSize=2,
            AvailabilityZones=[f"{REGION}a"],
            Tags=[{"Key": "phoenix:fleet", "Value": "web", "PropagateAtLaunch": True}],
        )

    def grant(self, *statements: dict[str, Any]) -> None:
        self.iam.put_role_policy(
            RoleName="deploy",
            PolicyName="grants",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        )

    def point_group_at_template(self) -> None:
        as_function(
            lambda: boto3.client("autoscaling", region_name=REGION).update_auto_scaling_group(
                AutoScalingGroupName="web",
                LaunchTemplate={"LaunchTemplateId": self.template_id, "Version": "1"},
            )
        )


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """One account for the module: each test sets the role's whole policy first."""
    with mock_aws():
        local.install_extensions()
        yield World()


def scaling_on_the_fleet_tag() -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": "autoscaling:UpdateAutoScalingGroup",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/phoenix:fleet": "web"}},
    }


def launching(world: World) -> list[dict[str, Any]]:
    return [
        {
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": "*",
            "Condition": {"ArnLike": {"ec2:LaunchTemplate": world.template_arn}},
        },
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": world.instance_role_arn},
    ]


def tagging_on_launch() -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": "ec2:CreateTags",
        "Resource": [
            f"arn:aws:ec2:{REGION}:123456789012:{kind}/*" for kind in ("instance", "volume")
        ],
        "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
    }


def test_a_call_its_role_does_not_grant_is_access_denied(world: World) -> None:
    world.grant({"Effect": "Allow", "Action": "autoscaling:Describe*", "Resource": "*"})
    with pytest.raises(ClientError) as refused:
        world.point_group_at_template()
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert "autoscaling:UpdateAutoScalingGroup" in str(refused.value)
    # the same call outside a function's thread (the test itself, CloudFormation) is not checked
    world.autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=0)


def test_a_tag_condition_is_evaluated_against_the_groups_tags(world: World) -> None:
    other = scaling_on_the_fleet_tag()
    other["Condition"] = {"StringEquals": {"aws:ResourceTag/phoenix:fleet": "api"}}
    world.grant(other)
    with pytest.raises(ClientError, match="AccessDenied"):
        as_function(
            lambda: boto3.client("autoscaling", region_name=REGION).update_auto_scaling_group(
                AutoScalingGroupName="web", MinSize=1
            )
        )
    world.grant(scaling_on_the_fleet_tag())
    as_function(
        lambda: boto3.client("autoscaling", region_name=REGION).update_auto_scaling_group(
            AutoScalingGroupName="web", MinSize=1
        )
    )


def test_a_launch_template_that_tags_on_launch_needs_create_tags(world: World) -> None:
    # Without CreateTags, Auto Scaling refuses to use the template, as AWS does
    world.grant(scaling_on_the_fleet_tag(), *launching(world))
    with pytest.raises(ClientError) as refused:
        world.point_group_at_template()
    assert "You are not authorized to use launch template" in str(refused.value)
    assert "ec2:CreateTags" in str(refused.value)
    # and without PassRole of the instance profile's role as well
    world.grant(scaling_on_the_fleet_tag(), launching(world)[0], tagging_on_launch())
    with pytest.raises(ClientError, match="iam:PassRole"):
        world.point_group_at_template()
    # With all three, the call goes through
    world.grant(scaling_on_the_fleet_tag(), *launching(world), tagging_on_launch())
    world.point_group_at_template()


def test_an_image_parameter_is_not_written_without_describe_images(world: World) -> None:
    parameter = "arn:aws:ssm:us-east-1:123456789012:parameter/phoenix/sandbox/web/ami"
    world.grant({"Effect": "Allow", "Action": "ssm:PutParameter", "Resource": parameter})
    ssm = boto3.client("ssm", region_name=REGION)

    def put(value: str) -> Any:
        return as_function(
            lambda: ssm.put_parameter(
                Name="/phoenix/sandbox/web/ami",
                Value=value,
                Type="String",
                DataType="aws:ec2:image",
                Overwrite=True,
            )
        )

    # PutParameter answers with a version, yet validation drops the value
    assert put(world.ami)["Version"] == 1
    with pytest.raises(ClientError, match="ParameterNotFound"):
        world.ssm.get_parameter(Name="/phoenix/sandbox/web/ami")
    world.grant(
        {"Effect": "Allow", "Action": "ssm:PutParameter", "Resource": parameter},
        {"Effect": "Allow", "Action": "ec2:DescribeImages", "Resource": "*"},
    )
    put(world.ami)
    assert (
        world.ssm.get_parameter(Name="/phoenix/sandbox/web/ami")["Parameter"]["Value"] == world.ami
    )
    # An AMI that does not exist is dropped too, and the parameter keeps its value
    put("ami-0123456789abcdef0")
    stored = world.ssm.get_parameter(Name="/phoenix/sandbox/web/ami")["Parameter"]
    assert (stored["Value"], stored["DataType"]) == (world.ami, "aws:ec2:image")
    # A text parameter is written as given
    world.ssm.put_parameter(Name="/phoenix/sandbox/web/note", Value="anything", Type="String")
    assert (
        world.ssm.get_parameter(Name="/phoenix/sandbox/web/note")["Parameter"]["Value"]
        == "anything"
    )


def test_a_call_with_no_resource_mapping_is_refused_not_guessed(world: World) -> None:
    world.grant({"Effect": "Allow", "Action": "*", "Resource": "*"})
    with pytest.raises(Exception, match="no resource mapping for ec2:StopInstances"):
        as_function(
            lambda: boto3.client("ec2", region_name=REGION).stop_instances(
                InstanceIds=["i-0123456789abcdef0"]
            )
        )


def test_a_state_machine_s_own_calls_are_made_with_its_role(world: World) -> None:
    # Given a state machine whose one state is an AWS SDK integration (GetParameter)
    world.ssm.put_parameter(Name="/phoenix/test/ami", Value="ami-1", Type="String")
    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = {
        "StartAt": "Read",
        "States": {
            "Read": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:ssm:getParameter",
                "Parameters": {"Name": "/phoenix/test/ami"},
                "ResultSelector": {"value.$": "$.Parameter.Value"},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="release", definition=json.dumps(definition), roleArn=world.role_arn
    )["stateMachineArn"]

    runs = itertools.count()

    def run() -> dict[str, Any]:
        arn = sfn.start_execution(stateMachineArn=machine, name=f"run-{next(runs)}")["executionArn"]
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            threading.Event().wait(0.05)
        return {"status": described["status"], "executionArn": arn}

    # When its role grants nothing, then the call is refused as Step Functions makes it
    world.grant({"Effect": "Allow", "Action": "ssm:PutParameter", "Resource": "*"})
    refused = run()
    assert refused["status"] == "FAILED"
    history = sfn.get_execution_history(executionArn=refused["executionArn"])["events"]
    (failed,) = [e for e in history if e["type"] == "ExecutionFailed"]
    details = failed["executionFailedEventDetails"]
    assert details["error"].startswith("Ssm."), details
    assert (
        "assumed-role/deploy/release is not authorized to perform: ssm:GetParameter"
        in (details["cause"])
    )

    # And granted, it is made
    parameter = f"arn:aws:ssm:{REGION}:123456789012:parameter/phoenix/test/ami"
    world.grant({"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": parameter})
    assert run()["status"] == "SUCCEEDED"


def test_run_instances_from_a_template_asks_what_the_template_s_use_does(world: World) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)

    def launch() -> Any:
        return as_function(
            lambda: ec2.run_instances(
                LaunchTemplate={"LaunchTemplateId": world.template_id, "Version": "1"},
                ImageId=world.ami,
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": [{"Key": "phoenix:drill", "Value": "d"}]}
                ],
            )
        )

    # Without PassRole of the template's instance profile role, it is refused
    world.grant(launching(world)[0], tagging_on_launch())
    with pytest.raises(ClientError, match="iam:PassRole"):
        launch()
    # and without CreateTags on launch for the request's own tags
    world.grant(*launching(world))
    with pytest.raises(ClientError, match="ec2:CreateTags"):
        launch()
    # With the three it launches, and terminating it asks for the instance, with its tags
    world.grant(*launching(world), tagging_on_launch())
    instance = launch()["Instances"][0]["InstanceId"]
    terminate = {
        "Effect": "Allow",
        "Action": "ec2:TerminateInstances",
        "Resource": f"arn:aws:ec2:{REGION}:123456789012:instance/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/phoenix:drill": "other"}},
    }
    world.grant(terminate)
    with pytest.raises(ClientError, match="ec2:TerminateInstances"):
        as_function(lambda: ec2.terminate_instances(InstanceIds=[instance]))
    world.grant(terminate | {"Condition": {"StringEquals": {"aws:ResourceTag/phoenix:drill": "d"}}})
    as_function(lambda: ec2.terminate_instances(InstanceIds=[instance]))
