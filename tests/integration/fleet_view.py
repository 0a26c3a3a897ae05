"""What a fleet looks like in the embedded AWS: through the APIs, and (for the capacity
watch, which runs inside the embedded AWS between steps) straight from moto's backends."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.elbv2.models import elbv2_backends

from local import clock
from local.application import instance_health
from local.embedded import ACCOUNT, REGION, EmbeddedAws


@dataclass(frozen=True)
class FleetView:
    """Where a fleet's instances and traffic are, and what the controller recorded."""

    amis_by_slot: dict[str, set[str]]
    desired_by_slot: dict[str, int]
    weights: dict[str, int]
    pointer: str
    fleet_item: dict[str, Any]

    @classmethod
    def read(cls, aws: EmbeddedAws, fleet: str) -> FleetView:
        groups = {
            g["AutoScalingGroupName"].rsplit("-", 1)[1]: g
            for g in aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
            if g["AutoScalingGroupName"].startswith(f"phoenix-sandbox-{fleet}-")
        }
        ec2 = aws.client("ec2")
        amis: dict[str, set[str]] = {}
        for slot, group in groups.items():
            ids = [i["InstanceId"] for i in group["Instances"]]
            found = ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []
            amis[slot] = {i["ImageId"] for r in found for i in r["Instances"]}
        slot_of = {arn: slot for slot, g in groups.items() for arn in g["TargetGroupARNs"]}
        weights: dict[str, int] = {}
        elbv2 = aws.client("elbv2")
        for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
            for listener in elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
                "Listeners"
            ]:
                action = listener["DefaultActions"][0]
                for target in action.get("ForwardConfig", {}).get("TargetGroups", []):
                    if target["TargetGroupArn"] in slot_of:
                        weights[slot_of[target["TargetGroupArn"]]] = target["Weight"]
        pointer = aws.client("ssm").get_parameter(Name=f"/phoenix/sandbox/{fleet}/ami")
        return cls(
            amis_by_slot=amis,
            desired_by_slot={s: g["DesiredCapacity"] for s, g in groups.items()},
            weights=weights if len(groups) > 1 else {"blue": 100},
            pointer=pointer["Parameter"]["Value"],
            fleet_item=ledger_item(aws, f"FLEET#{fleet}", "FLEET"),
        )

    @property
    def serving_amis(self) -> set[str]:
        """The AMIs of the instances in slots that receive traffic."""
        return {ami for slot, w in self.weights.items() if w > 0 for ami in self.amis_by_slot[slot]}

    @property
    def idle_desired(self) -> int:
        return sum(d for slot, d in self.desired_by_slot.items() if self.weights.get(slot) == 0)


def ledger_table(aws: EmbeddedAws) -> str:
    (table,) = aws.client("dynamodb").list_tables()["TableNames"]
    return str(table)


def ledger_item(aws: EmbeddedAws, pk: str, sk: str) -> dict[str, Any]:
    item = aws.client("dynamodb").get_item(
        TableName=ledger_table(aws), Key={"pk": {"S": pk}, "sk": {"S": sk}}
    )
    return dict(item.get("Item", {}))


def release_item(aws: EmbeddedAws, fleet: str, release_id: str) -> dict[str, Any]:
    item = ledger_item(aws, f"FLEET#{fleet}", f"RELEASE#{release_id}")
    return {
        "outcome": item["outcome"]["S"],
        "reason": item.get("reason", {}).get("S", ""),
        "steps": [s["M"]["step"]["S"] for s in item["steps"]["L"]],
        "to_ami": item["to_ami"]["S"],
    }


def request_release(aws: EmbeddedAws, fleet: str, ami: str) -> dict[str, Any]:
    """Put a `Release Requested` event, wait for the release to end, return its execution."""
    return aws.request_release(fleet, ami, requested_by="tests")


@dataclass
class CapacityWatch:
    """Serving capacity all through a release: healthy running instances in slots whose
    target group gets traffic, seen after every simulated minute and every step."""

    fleet: str
    required: int
    seen: list[int] = field(default_factory=list)

    def __enter__(self) -> CapacityWatch:
        self._stop = clock.watch(self.look)
        self.look()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop()
        self.look()

    @property
    def lowest(self) -> int:
        return min(self.seen)

    def look(self) -> None:
        self.seen.append(serving_capacity(self.fleet))


def required_capacity(desired: int, min_healthy_percentage: int) -> int:
    return math.ceil(desired * min_healthy_percentage / 100)


def serving_capacity(fleet: str) -> int:
    groups = {
        name: group
        for name, group in autoscaling_backends[ACCOUNT][REGION].autoscaling_groups.items()
        if name.startswith(f"phoenix-sandbox-{fleet}-")
    }
    group_of = {arn: g for g in groups.values() for arn in g.target_group_arns}
    elbv2 = elbv2_backends[ACCOUNT][REGION]
    serving = 0
    for balancer in list(elbv2.load_balancers.values()):
        for listener in list(balancer.listeners.values()):
            for action in listener.default_actions:
                targets = action.data.get("ForwardConfig", {}).get("TargetGroups", [])
                if action.data.get("TargetGroupArn"):
                    targets = [{"TargetGroupArn": action.data["TargetGroupArn"], "Weight": 1}]
                for target in targets:
                    group = group_of.get(target["TargetGroupArn"])
                    if group is None or int(target.get("Weight", 1)) == 0:
                        continue
                    for state in group.active_instances():
                        health = instance_health(ACCOUNT, REGION, state.instance.id)
                        serving += health is not None and health != "failing"
    return serving
