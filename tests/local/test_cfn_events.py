"""Stack status changes on the default event bus, as CloudFormation sends them
(local/cfn_events.py cites the AWS documentation the shape follows)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import eventbridge, install_extensions
from tests.local.eventbus import EventQueue

REGION = "us-east-1"
# The keys of AWS's sample `CloudFormation Stack Status Change` event and its detail.
ENVELOPE = {"version", "id", "detail-type", "source", "account", "time", "region", "resources"}
DETAIL = {"stack-id", "status-details", "client-request-token"}


def _template(instance_type: str) -> str:
    data = {"ImageId": "ami-12c6146b", "InstanceType": instance_type}
    resource = {"Type": "AWS::EC2::LaunchTemplate", "Properties": {"LaunchTemplateData": data}}
    return json.dumps({"Resources": {"Template": resource}})


@pytest.fixture
def stack_events() -> Iterator[list[dict[str, Any]]]:
    with mock_aws():
        install_extensions(None)
        EventQueue.for_pattern(
            "stacks",
            {
                "source": ["aws.cloudformation"],
                "detail-type": ["CloudFormation Stack Status Change"],
            },
        )
        matched: list[dict[str, Any]] = []
        stop = eventbridge.tap("stacks", matched.append)
        yield matched
        stop()


def test_every_stack_status_change_is_published_in_aws_s_shape(
    stack_events: list[dict[str, Any]],
) -> None:
    # Given a stack created, then updated by a change set (as `cdk deploy` does), then
    # deleted
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    stack_id = cloudformation.create_stack(
        StackName="teststack", TemplateBody=_template("t4g.small")
    )["StackId"]
    cloudformation.create_change_set(
        StackName="teststack",
        ChangeSetName="cdk-deploy",
        ChangeSetType="UPDATE",
        TemplateBody=_template("t4g.medium"),
    )
    cloudformation.execute_change_set(StackName="teststack", ChangeSetName="cdk-deploy")
    cloudformation.delete_stack(StackName=stack_id)
    eventbridge.drain()

    # Then each status was sent once, in order, with AWS's fields
    statuses = [e["detail"]["status-details"]["status"] for e in stack_events]
    assert statuses == [
        "CREATE_IN_PROGRESS",
        "CREATE_COMPLETE",
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE",
        "DELETE_IN_PROGRESS",
        "DELETE_COMPLETE",
    ]
    for event in stack_events:
        assert set(event) >= ENVELOPE
        assert set(event["detail"]) == DETAIL
        assert (event["source"], event["resources"]) == ("aws.cloudformation", [stack_id])
        assert (event["region"], event["detail"]["stack-id"]) == (REGION, stack_id)
        assert set(event["detail"]["status-details"]) == {"status", "status-reason"}
