"""Event bus targets in the embedded AWS, as the EventBridge user guide describes them:
the event arrives on the other bus with its resources, time, account and region, with
the rule target's role, and goes from one bus to one other at most."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import eventbridge, install_extensions

ACCOUNT = "123456789012"
SENDER, RECEIVER, THIRD = "us-east-1", "us-west-2", "eu-west-1"
PATTERN = {"source": ["phoenix.test"]}
IMAGE = f"arn:aws:imagebuilder:{SENDER}:{ACCOUNT}:image/phoenix-dr-golden/1.0.0/1"


def bus(region: str) -> str:
    return f"arn:aws:events:{region}:{ACCOUNT}:event-bus/default"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        install_extensions(None)
        yield


def queue(region: str, name: str) -> str:
    """A queue in `region` that a rule on its default bus fills with what PATTERN matches."""
    sqs = boto3.client("sqs", region_name=region)
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events = boto3.client("events", region_name=region)
    events.put_rule(Name=name, EventPattern=json.dumps(PATTERN))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn["QueueArn"]}])
    return url


def received(region: str, url: str) -> list[dict[str, Any]]:
    eventbridge.drain()
    messages = boto3.client("sqs", region_name=region).receive_message(
        QueueUrl=url, MaxNumberOfMessages=10
    )
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def role(name: str, resource: str) -> str:
    """A role EventBridge assumes that may put events on `resource` only."""
    iam = boto3.client("iam", region_name=SENDER)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = str(
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": resource}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="put", PolicyDocument=json.dumps(policy))
    return arn


def forward(source: str, name: str, target: dict[str, Any]) -> None:
    events = boto3.client("events", region_name=source)
    events.put_rule(Name=name, EventPattern=json.dumps(PATTERN))
    with_id: Any = {"Id": "bus", **target}
    events.put_targets(Rule=name, Targets=[with_id])


def put_event(region: str = SENDER) -> None:
    response = boto3.client("events", region_name=region).put_events(
        Entries=[
            {
                "Source": "phoenix.test",
                "DetailType": "Image Forwarded",
                "Detail": json.dumps({"state": {"status": "AVAILABLE"}}),
                "Resources": [IMAGE],
                "Time": datetime(2026, 11, 25, 4, 12, 9, tzinfo=UTC),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0


def test_an_event_arrives_in_another_region_as_the_sender_received_it(aws: None) -> None:
    # Given a rule on the sender's bus forwarding to the receiver's default bus with a role
    # that may put events there, and queues watching both buses
    here = queue(SENDER, "here")
    there = queue(RECEIVER, "there")
    forward(SENDER, "to-receiver", {"Arn": bus(RECEIVER), "RoleArn": role("fwd", bus(RECEIVER))})

    # When an event is put on the sender's bus
    put_event()

    # Then the receiver's rules see the same event, under a new id: resources, time,
    # detail, and the account and region it originated in
    (sent,) = received(SENDER, here)
    (arrived,) = received(RECEIVER, there)
    assert arrived["resources"] == [IMAGE]
    assert arrived["region"] == SENDER
    assert arrived["id"] != sent["id"]
    new = {"id", "ingestion-time"}
    assert {k: v for k, v in arrived.items() if k not in new} == {
        k: v for k, v in sent.items() if k not in new
    }


@pytest.mark.parametrize(
    "target",
    [
        pytest.param({"Arn": bus(RECEIVER)}, id="no role"),
        pytest.param(
            {"Arn": bus(RECEIVER), "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/other-bus"},
            id="a role for another bus",
        ),
        pytest.param(
            {"Arn": bus(RECEIVER), "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/fwd", "Input": "{}"},
            id="input transformation",
        ),
    ],
)
def test_a_bus_target_eventbridge_would_not_deliver_to_gets_nothing(
    aws: None, target: dict[str, Any]
) -> None:
    role("fwd", bus(RECEIVER))
    role("other-bus", bus(THIRD))
    there = queue(RECEIVER, "there")
    forward(SENDER, "to-receiver", target)

    put_event()

    assert received(RECEIVER, there) == []


def test_an_event_from_another_bus_goes_to_no_third_bus(aws: None) -> None:
    # Given the sender forwarding to the receiver, and the receiver to a third region
    third = queue(THIRD, "third")
    there = queue(RECEIVER, "there")
    forward(SENDER, "to-receiver", {"Arn": bus(RECEIVER), "RoleArn": role("a", bus(RECEIVER))})
    forward(RECEIVER, "to-third", {"Arn": bus(THIRD), "RoleArn": role("b", bus(THIRD))})

    # When an event is put on the sender's bus, it reaches the receiver only
    put_event()
    assert len(received(RECEIVER, there)) == 1
    assert received(THIRD, third) == []

    # While the receiver's own events do reach the third region
    put_event(RECEIVER)
    (arrived,) = received(THIRD, third)
    assert arrived["region"] == RECEIVER
