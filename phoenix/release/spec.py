"""What the release state machine knows of each fleet, and what each step may call.

`fleet_spec` is written into the state machine's definition (FleetSpec in
phoenix/release/runtime/models.py validates it at run time). `STEP_CALLS` lists, per
step function, the ledger actions, the fleet actions (scoped by ImmutableFleet.grant_release)
and the other actions its code calls; a test checks each against the code.
"""

from __future__ import annotations

import math
from typing import Any

from phoenix.config.fleet import BlueGreenFleet, CanaryFleet, RollingFleet
from phoenix.fleet.immutable_fleet import ImmutableFleet
from phoenix.kernel.ledger import LOCK_HOLD

LEDGER_WRITE = ("dynamodb:UpdateItem",)
# function -> (ledger actions, fleet actions, other actions)
STEP_CALLS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "release_preflight": (
        ("dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:PutItem"),
        (
            "ssm:GetParameters",
            "ec2:DescribeImages",
            "ec2:DescribeLaunchTemplateVersions",
            "autoscaling:DescribeAutoScalingGroups",
            "autoscaling:DescribeInstanceRefreshes",
            "cloudwatch:DescribeAlarms",
        ),
        ("events:PutEvents",),
    ),
    "release_prepare": (LEDGER_WRITE, ("ec2:CreateLaunchTemplateVersion",), ("events:PutEvents",)),
    "release_deploy": (
        LEDGER_WRITE,
        (
            "autoscaling:StartInstanceRefresh",
            "autoscaling:DescribeInstanceRefreshes",
            "autoscaling:UpdateAutoScalingGroup",
            "ssm:PutParameter",
            "ec2:RunInstances",
            "iam:PassRole",
            "ec2:CreateTags",
        ),
        ("events:PutEvents",),
    ),
    "release_gate": (
        LEDGER_WRITE,
        (
            "elasticloadbalancing:DescribeTargetHealth",
            "ec2:DescribeInstances",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:GetMetricData",
        ),
        ("events:PutEvents",),
    ),
    "release_rollback": (
        LEDGER_WRITE,
        (
            "elasticloadbalancing:ModifyListener",
            "autoscaling:UpdateAutoScalingGroup",
            "autoscaling:DescribeInstanceRefreshes",
            "autoscaling:RollbackInstanceRefresh",
            "autoscaling:CancelInstanceRefresh",
            "autoscaling:StartInstanceRefresh",
            "ssm:PutParameter",
            "ec2:RunInstances",
            "iam:PassRole",
            "ec2:CreateTags",
        ),
        ("events:PutEvents",),
    ),
    "release_finalize": (
        ("dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:PutItem"),
        ("ssm:PutParameter", "autoscaling:UpdateAutoScalingGroup", "ec2:DescribeImages"),
        ("events:PutEvents", "ec2:CreateTags", "ec2:DeleteTags"),
    ),
    # The definition's `HoldLock`, and what an execution that ended without its end
    # handling left, put right on its status change event (runtime/cleanup.py).
    "release_cleanup": (
        ("dynamodb:GetItem", "dynamodb:UpdateItem"),
        (
            "ssm:GetParameters",
            "elasticloadbalancing:ModifyListener",
            "ssm:PutParameter",
            "autoscaling:UpdateAutoScalingGroup",
            "autoscaling:DescribeInstanceRefreshes",
            "autoscaling:RollbackInstanceRefresh",
            "autoscaling:CancelInstanceRefresh",
        ),
        ("events:PutEvents",),
    ),
}


def step_handler(step: str) -> str:
    """The handler of a step function (`release_gate` -> phoenix.release.handlers.gate)."""
    return f"phoenix.release.handlers.{step.removeprefix('release_')}.lambda_handler"


def fleet_spec(fleet: ImmutableFleet) -> dict[str, Any]:
    """The fleet as the release steps see it: resources, strategy settings, thresholds."""
    config = fleet.config
    health = config.health_check
    warmup = health.interval_seconds * health.healthy_threshold + 30
    spec: dict[str, Any] = {
        "name": config.name,
        "strategy": config.strategy,
        "architecture": config.architecture,
        "listener": fleet.listener.listener_arn,
        "slots": {
            slot: {
                "group": fleet.auto_scaling_groups[slot].auto_scaling_group_name,
                "target_group": fleet.target_groups[slot].target_group_arn,
                "launch_template": fleet.launch_templates[slot].launch_template_id,
            }
            for slot in fleet.slots
        },
        "alarms": [alarm.alarm_name for alarm in fleet.alarms],
        "min_healthy_percentage": 100,
        "max_healthy_percentage": 200,
        "checkpoint_percentages": [],
        "checkpoint_delay_seconds": 0,
        "bake_seconds": 0,
        "steps": [100],
        "rollback_window_seconds": 0,
        "error_rate_percent": config.alarms.error_rate_percent,
        "p99_latency_ms": config.alarms.p99_latency_ms,
        "warmup_seconds": warmup,
        "warmup_checks": max(3, math.ceil(health.grace_period_seconds / warmup) + 3),
        "when_locked": config.when_locked,
        "queue_retry_seconds": config.queue_retry_minutes * 60,
        # retrying for as long as another release may hold the lock
        "queue_attempts": math.ceil(LOCK_HOLD.total_seconds() / (config.queue_retry_minutes * 60))
        if config.when_locked == "queue"
        else 0,
    }
    if isinstance(config, RollingFleet):
        rolling = config.rolling
        spec |= {
            "min_healthy_percentage": rolling.min_healthy_percentage,
            "max_healthy_percentage": rolling.max_healthy_percentage,
            # as configured, ending at 100: the refresh replaces up to its last checkpoint
            "checkpoint_percentages": list(rolling.checkpoint_percentages),
            "checkpoint_delay_seconds": rolling.checkpoint_delay_minutes * 60,
            "bake_seconds": rolling.bake_time_minutes * 60,
        }
    elif isinstance(config, BlueGreenFleet):
        spec |= {
            "bake_seconds": config.blue_green.bake_time_minutes * 60,
            "rollback_window_seconds": config.blue_green.rollback_window_minutes * 60,
        }
    elif isinstance(config, CanaryFleet):
        spec |= {
            "steps": config.canary.steps,
            "bake_seconds": config.canary.step_bake_time_minutes * 60,
            "rollback_window_seconds": config.canary.rollback_window_minutes * 60,
        }
    return spec
