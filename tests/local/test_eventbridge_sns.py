"""SNS topic targets in the embedded AWS: EventBridge publishes the event or its
transformed input as the message, only where the topic's policy lets
events.amazonaws.com publish (EventBridge user guide, "Amazon SNS permissions")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import eventbridge, install_extensions

REGION = "us-east-1"
PATTERN = {"source": ["phoenix"], "detail-type": ["Release Succeeded"]}
TEXT = '"phoenix sandbox: <fleet> now serves <ami>"'


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        install_extensions(None)
        yield


def _topic(*, events_may_publish: bool) -> tuple[str, str]:
    """A topic with a subscribed queue, the rule's target; its ARN and the queue's URL."""
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="notifications")["TopicArn"]
    principal = "events.amazonaws.com" if events_may_publish else "cloudwatch.amazonaws.com"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sns:Publish",
         "Resource": topic}]}  # fmt: skip
    sns.set_topic_attributes(
        TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(policy)
    )
    url = sqs.create_queue(QueueName="people")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"],
                  Attributes={"RawMessageDelivery": "true"})  # fmt: skip
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="succeeded", EventPattern=json.dumps(PATTERN))
    paths = {"fleet": "$.detail.fleet", "ami": "$.detail.to_ami"}
    target: Any = {"Id": "topic", "Arn": topic,
              "InputTransformer": {"InputPathsMap": paths, "InputTemplate": TEXT}}  # fmt: skip
    events.put_targets(Rule="succeeded", Targets=[target])
    return topic, url


def _put_and_read(url: str) -> list[Any]:
    boto3.client("events", region_name=REGION).put_events(
        Entries=[{"Source": "phoenix", "DetailType": "Release Succeeded",
                  "Detail": json.dumps({"fleet": "web", "to_ami": "ami-0123456789abcdef0"})}]
    )  # fmt: skip
    eventbridge.drain()
    messages = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=url, MaxNumberOfMessages=10
    )
    return [m["Body"] for m in messages.get("Messages", [])]


def test_a_topic_target_publishes_the_transformed_text(aws: None) -> None:
    _, url = _topic(events_may_publish=True)

    # a quoted template is a JSON string: EventBridge sends it with its quotes
    assert _put_and_read(url) == ['"phoenix sandbox: web now serves ami-0123456789abcdef0"']


def test_a_topic_whose_policy_does_not_let_eventbridge_publish_gets_nothing(aws: None) -> None:
    _, url = _topic(events_may_publish=False)

    assert _put_and_read(url) == []
