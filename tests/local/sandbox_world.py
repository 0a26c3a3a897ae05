"""What tests of the deployed sandbox read and change: its groups, its listener's weights
by slot (tests/local/test_embedded.py)."""

from __future__ import annotations

from typing import Any

from local.embedded import EmbeddedAws


def groups_of(aws: EmbeddedAws) -> dict[str, Any]:
    response = aws.client("autoscaling").describe_auto_scaling_groups()
    return {g["AutoScalingGroupName"]: g for g in response["AutoScalingGroups"]}


def weights_of(aws: EmbeddedAws) -> dict[str, int]:
    elbv2 = aws.client("elbv2")
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    groups = {
        g["TargetGroupArn"]: g["AutoScalingGroupName"]
        for g in [
            {"TargetGroupArn": arn, "AutoScalingGroupName": name}
            for name, group in groups_of(aws).items()
            for arn in group["TargetGroupARNs"]
        ]
    }
    return {
        groups[g["TargetGroupArn"]].rsplit("-", 1)[1]: g["Weight"]
        for g in listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    }


def shift_traffic(aws: EmbeddedAws, weights: dict[str, int]) -> None:
    """Set the listener's weights by slot, as the release controller does."""
    elbv2 = aws.client("elbv2")
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    slots = {
        group["TargetGroupARNs"][0]: name.rsplit("-", 1)[1]
        for name, group in groups_of(aws).items()
    }
    groups = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    elbv2.modify_listener(
        ListenerArn=listener["ListenerArn"],
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {
                            "TargetGroupArn": g["TargetGroupArn"],
                            "Weight": weights[slots[g["TargetGroupArn"]]],
                        }
                        for g in groups
                    ]
                },
            }
        ],
    )
