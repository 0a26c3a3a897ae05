"""`Fn::GetStackOutput` in the embedded AWS's CloudFormation: a stack reads another stack's
output when it is deployed (how CDK refers from a fleet stack to the region's stack)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import install_extensions

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        install_extensions(None)
        yield


def _deploy(name: str, resources: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    client = boto3.client("cloudformation", region_name=REGION)
    body = json.dumps({"Resources": resources, "Outputs": outputs})
    client.create_stack(StackName=name, TemplateBody=body)
    (stack,) = client.describe_stacks(StackName=name)["Stacks"]
    return dict(stack)


def _reading(output: str, stack: str = "shared") -> dict[str, Any]:
    source = {"StackName": stack, "OutputName": output, "Region": {"Ref": "AWS::Region"}}
    return {"Fn::GetStackOutput": source}


def test_a_stack_reads_another_stack_s_output_without_an_export(aws: None) -> None:
    topic = {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "shared"}}}
    shared = _deploy("shared", topic, {"TopicArn": {"Value": {"Ref": "Topic"}}})
    (arn,) = [o["OutputValue"] for o in shared["Outputs"]]
    reader = {
        "Copy": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/copied", "Type": "String", "Value": _reading("TopicArn")},
        }
    }
    stack = _deploy("reader", reader, {"Read": {"Value": _reading("TopicArn")}})
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert [o["OutputValue"] for o in stack["Outputs"]] == [arn]
    assert (
        boto3.client("ssm", region_name=REGION).get_parameter(Name="/copied")["Parameter"]["Value"]
        == arn
    )
    assert boto3.client("cloudformation", region_name=REGION).list_exports()["Exports"] == []


@pytest.mark.parametrize(("stack", "output"), [("nowhere", "TopicArn"), ("shared", "Missing")])
def test_a_stack_or_output_that_does_not_exist_fails_the_deploy(
    aws: None, stack: str, output: str
) -> None:
    topic = {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "shared"}}}
    _deploy("shared", topic, {"TopicArn": {"Value": {"Ref": "Topic"}}})
    reader = {
        "Copy": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/copied", "Type": "String", "Value": _reading(output, stack)},
        }
    }
    assert _deploy("reader", reader, {})["StackStatus"] == "CREATE_FAILED"
