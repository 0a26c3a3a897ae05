"""Watching the default event bus in tests: a rule delivering to a queue we can read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

REGION = "us-east-1"


@dataclass(frozen=True)
class EventQueue:
    """Events matching `pattern`, as EventBridge delivered them to an SQS queue."""

    url: str

    @classmethod
    def for_pattern(cls, name: str, pattern: dict[str, Any]) -> EventQueue:
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = boto3.client("events", region_name=REGION)
        events.put_rule(Name=name, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
        return cls(str(url))

    def received(self) -> list[dict[str, Any]]:
        """The events delivered since the last call (up to ten)."""
        response = boto3.client("sqs", region_name=REGION).receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10
        )
        return [json.loads(m["Body"]) for m in response.get("Messages", [])]
