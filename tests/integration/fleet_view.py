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
