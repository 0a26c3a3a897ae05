"""What a fleet looks like in the embedded AWS: through the APIs, and (for the capacity
watch, which runs inside the embedded AWS between steps) straight from moto's backends."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from local.embedded import EmbeddedAws
from local.fleet_view import FleetView
from local.reliability import CapacityWatch, serving_capacity

__all__ = [
    "CapacityWatch",
    "request_release",
    "required_capacity",
    "serving_capacity",
    "serving_instance",
    "subscribed",
]


def request_release(aws: EmbeddedAws, fleet: str, ami: str) -> dict[str, Any]:
    """Put a `Release Requested` event, wait for the release to end, return its execution."""
    return aws.request_release(fleet, ami, requested_by="tests")


def required_capacity(desired: int, min_healthy_percentage: int) -> int:
    return math.ceil(desired * min_healthy_percentage / 100)


def serving_instance(aws: EmbeddedAws, fleet: str) -> str:
    """An instance of the fleet's slot that has traffic."""
    weights = FleetView.read(aws, fleet).weights
    slot = next(slot for slot, weight in weights.items() if weight)
    (group,) = aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"phoenix-sandbox-{fleet}-{slot}"]
    )["AutoScalingGroups"]
    return str(group["Instances"][0]["InstanceId"])


@contextmanager
def subscribed(aws: EmbeddedAws, name: str, pattern: dict[str, Any]) -> Iterator[str]:
    """A queue that receives every event `pattern` matches (a rule named `name`), for the
    block; its URL. The rule goes when the block ends."""
    sqs, events = aws.client("sqs"), aws.client("events")
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn["QueueArn"]}])
    try:
        yield url
    finally:
        events.remove_targets(Rule=name, Ids=["queue"])
        events.delete_rule(Name=name)
