"""What a set of fleets runs, as AWS says, read in batches whose count is constant in the
number of instances: each slot's group (capacity, launch template version, instances
and the AMI each runs) and the weight its listener forwards to it; and the ledger's fleet
items. The `phoenix` command's status and the drift check read through this module.

Batches are the APIs' own limits: DescribeAutoScalingGroups 100 names a call,
DescribeInstances 1,000 ids a call, DescribeListeners 20 ARNs a call, BatchGetItem 100
keys a call (each API reference), every page followed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from phoenix.kernel.attributes import plain
from phoenix.kernel.ledger import fleet_key

if TYPE_CHECKING:
    from types_boto3_autoscaling.client import AutoScalingClient
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_ec2.client import EC2Client
    from types_boto3_elbv2.client import ElasticLoadBalancingv2Client

GROUPS_PER_CALL = 100
INSTANCES_PER_CALL = 1000
LISTENERS_PER_CALL = 20
KEYS_PER_BATCH = 100
# An instance on its way out is not part of what the group runs.
LEAVING = ("Terminating", "Terminated", "Detaching", "Detached")

SlotKey = tuple[str, str]  # fleet, slot


@dataclass
class Instance:
    lifecycle: str
    ami: str = ""


@dataclass
class ObservedSlot:
    """One slot as AWS describes it."""

    desired: int
    min_size: int
    launch_template_version: str | None
    weight: int = 0
    instances: dict[str, Instance] = field(default_factory=dict)

    def amis(self, *, in_service: bool = False) -> dict[str, int]:
        """AMI -> instances running it (only those in service with `in_service`)."""
        return dict(
            Counter(
                i.ami
                for i in self.instances.values()
                if i.ami and (i.lifecycle == "InService" or not in_service)
            )
        )


def observe(
    autoscaling: AutoScalingClient,
    ec2: EC2Client,
    elbv2: ElasticLoadBalancingv2Client,
    specs: dict[str, dict[str, Any]],
) -> dict[SlotKey, ObservedSlot]:
    """(fleet, slot) -> the slot as AWS describes it, for every slot of `specs` (registry
    specs by fleet) whose group exists."""
    slots = [(name, slot) for name, spec in specs.items() for slot in spec["slots"]]
    groups = {specs[name]["slots"][slot]["group"]: (name, slot) for name, slot in slots}
    found = _groups(autoscaling, groups)
    _images(ec2, found)
    by_target_group = {
        specs[name]["slots"][slot]["target_group"]: (name, slot) for name, slot in slots
    }
    listeners = sorted({str(spec["listener"]) for spec in specs.values()})
    for target_group, weight in _weights(elbv2, listeners).items():
        key = by_target_group.get(target_group)
        if key in found:
            found[key].weight = weight
    return found


def _groups(
    autoscaling: AutoScalingClient, groups: dict[str, SlotKey]
) -> dict[SlotKey, ObservedSlot]:
    pages = autoscaling.get_paginator("describe_auto_scaling_groups")
    found: dict[SlotKey, ObservedSlot] = {}
    names = sorted(groups)
    for first in range(0, len(names), GROUPS_PER_CALL):
        for page in pages.paginate(AutoScalingGroupNames=names[first : first + GROUPS_PER_CALL]):
            for group in page["AutoScalingGroups"]:
                template = group.get("LaunchTemplate") or {}
                slot = ObservedSlot(
                    desired=group["DesiredCapacity"],
                    min_size=group["MinSize"],
                    launch_template_version=template.get("Version"),
                )
                for instance in group.get("Instances", []):
                    if instance["LifecycleState"] not in LEAVING:
                        slot.instances[instance["InstanceId"]] = Instance(
                            instance["LifecycleState"]
                        )
                found[groups[group["AutoScalingGroupName"]]] = slot
    return found


def _images(ec2: EC2Client, found: dict[SlotKey, ObservedSlot]) -> None:
    """Each instance's AMI (DescribeInstances: the group's own description of an instance
    need not name it)."""
    owner = {i: slot for slot in found.values() for i in slot.instances}
    ids = sorted(owner)
    pages = ec2.get_paginator("describe_instances")
    for first in range(0, len(ids), INSTANCES_PER_CALL):
        for page in pages.paginate(InstanceIds=ids[first : first + INSTANCES_PER_CALL]):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    owner[instance["InstanceId"]].instances[instance["InstanceId"]].ami = str(
                        instance.get("ImageId", "")
                    )


def _weights(elbv2: ElasticLoadBalancingv2Client, listeners: list[str]) -> dict[str, int]:
    """Target group -> the weight its listener forwards to it."""
    weights: dict[str, int] = {}
    for first in range(0, len(listeners), LISTENERS_PER_CALL):
        described = elbv2.describe_listeners(
            ListenerArns=listeners[first : first + LISTENERS_PER_CALL]
        )
        for listener in described["Listeners"]:
            for action in listener["DefaultActions"]:
                forward = action.get("ForwardConfig", {}).get("TargetGroups", [])
                for group in forward:
                    weights[group["TargetGroupArn"]] = int(group.get("Weight", 0))
                if action.get("TargetGroupArn") and not forward:
                    weights[action["TargetGroupArn"]] = 100
    return weights


def fleet_items(
    dynamodb: DynamoDBClient, table: str, fleets: list[str]
) -> dict[str, dict[str, Any]]:
    """The ledger's fleet items (consistent reads, as plain values), by fleet; one never
    written is empty."""
    found: dict[str, dict[str, Any]] = {fleet: {} for fleet in fleets}
    for first in range(0, len(fleets), KEYS_PER_BATCH):
        keys: list[Any] = [fleet_key(f) for f in fleets[first : first + KEYS_PER_BATCH]]
        request: Any = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                found[str(item["pk"]["S"]).removeprefix("FLEET#")] = plain(item)
            request = response.get("UnprocessedKeys") or None
    return found
