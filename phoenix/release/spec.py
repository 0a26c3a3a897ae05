"""What the release controller knows of each fleet, and what each step may call.

`fleet_spec` is what the fleet registry holds for a fleet: `register_fleet` writes it as the
fleet's parameter, deployed with the fleet (FleetSpec in phoenix/release/runtime/models.py
validates it at run time; phoenix.kernel.registry reads it). `STEP_CALLS` lists, per
step function, the ledger actions, the fleet actions (scoped by ImmutableFleet.grant_release)
and the other actions its code calls; a test checks each against the code.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aws_cdk import Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm

from phoenix.config.fleet import BlueGreenFleet, CanaryFleet, FleetConfig, RollingFleet
from phoenix.drift.stack_resources import drift_checked
from phoenix.fleet.immutable_fleet import ImmutableFleet
from phoenix.kernel.ledger import LOCK_HOLD
from phoenix.kernel.names import fleet_registry, registered_fleet
from phoenix.platform.functions import PhoenixFunction
from phoenix.platform.nag import acknowledge_wildcard, nag_arn
from phoenix.platform.roles import parameter_arn

# What a function that reads the registry calls (phoenix.kernel.registry): one fleet or
# a few by name; every fleet by the registry's path.
REGISTRY_READ = "ssm:GetParameters"
REGISTRY_LIST = "ssm:GetParametersByPath"

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
        ("events:PutEvents", "imagebuilder:GetImage", "imagebuilder:ListImageScanFindings"),
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
    # PreTrafficTests: the fleet's hook, invoked against the new slot before traffic
    # (runtime/pretraffic.py); only functions tagged as the environment's hooks.
    "release_pretraffic": (
        LEDGER_WRITE,
        ("elasticloadbalancing:DescribeTargetHealth", "ec2:DescribeInstances"),
        ("events:PutEvents", "lambda:InvokeFunction"),
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


# Lambda runs a function for at most 900 s: the pre-traffic step waits for a hook's
# answer for up to 840 s (phoenix/config/fleet.py PreTrafficHook), the others a minute.
STEP_TIMEOUTS = {"release_pretraffic": 900}


def step_handler(step: str) -> str:
    """The handler of a step function (`release_gate` -> phoenix.release.handlers.gate)."""
    return f"phoenix.release.handlers.{step.removeprefix('release_')}.lambda_handler"


def rollback_window_seconds(config: FleetConfig) -> int:
    """How long a release's old slot stays warm after it succeeds (rolling: none)."""
    if isinstance(config, BlueGreenFleet):
        return config.blue_green.rollback_window_minutes * 60
    if isinstance(config, CanaryFleet):
        return config.canary.rollback_window_minutes * 60
    return 0


def fleet_spec(fleet: ImmutableFleet) -> dict[str, Any]:
    """The fleet as the release steps see it: resources, strategy settings, thresholds."""
    config = fleet.config
    health = config.health_check
    warmup = health.interval_seconds * health.healthy_threshold + 30
    spec: dict[str, Any] = {
        "name": config.name,
        "strategy": config.strategy,
        "image_pipeline": config.image_pipeline,
        # the stack that deploys it (a deploy of that stack releases what it changed)
        "stack": Stack.of(fleet).stack_name,
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
        "warmup_seconds": warmup,
        "warmup_checks": max(3, math.ceil(health.grace_period_seconds / warmup) + 3),
        "when_locked": config.when_locked,
        "drift": config.drift,
        # the resources the drift check has CloudFormation compare with their template
        "drift_resources": drift_checked(fleet),
        "drill_every_seconds": config.rollback_drill_days * 86400,
        "cve_severity": config.cve_severity,
        "rebuild_on_cve": config.rebuild_on_cve,
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
            "rollback_window_seconds": rollback_window_seconds(config),
        }
    elif isinstance(config, CanaryFleet):
        spec |= {
            "steps": config.canary.steps,
            "bake_seconds": config.canary.step_bake_time_minutes * 60,
            "rollback_window_seconds": rollback_window_seconds(config),
            "judgment": config.canary.judgment.model_dump(),
            "approval_seconds": config.canary.judgment.approval_timeout_minutes * 60,
        }
    # absent without a hook: the state machine's PreTrafficHook? asks whether it is present
    if isinstance(config, BlueGreenFleet | CanaryFleet) and config.pre_traffic_hook:
        spec["pre_traffic_hook"] = config.pre_traffic_hook.model_dump()
    return spec


# A standard parameter's value holds 4 KB, an advanced one's 8 KB (AWS Systems Manager
# User Guide, "Managing parameter tiers"; an advanced parameter costs $0.05 a month).
STANDARD_VALUE_LIMIT = 4096
# What a CloudFormation reference in a spec (a name, an ARN or an ID) is taken to resolve
# to at most: a listener ARN with a 32-character load balancer name is about 130.
LONGEST_REFERENCE = "x" * 160


def longest_text(spec: Any) -> str:
    """A spec as JSON, each reference to a resource as LONGEST_REFERENCE: as long as its
    parameter's value can be once deployed."""

    def resolved(value: Any) -> Any:
        if isinstance(value, str) and Token.is_unresolved(value):
            return LONGEST_REFERENCE
        if isinstance(value, dict):
            return {k: resolved(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolved(v) for v in value]
        return value

    return json.dumps(resolved(spec), separators=(",", ":"))


def registry_tier(spec: dict[str, Any]) -> ssm.ParameterTier:
    """Standard for a spec that fits 4 KB (most: about 3 KB); advanced for one that may
    not, such as a canary judging several custom metrics (the config keeps those within
    what 8 KB holds, phoenix/config/fleet.py)."""
    fits = len(longest_text(spec)) <= STANDARD_VALUE_LIMIT
    return ssm.ParameterTier.STANDARD if fits else ssm.ParameterTier.ADVANCED


def register_fleet(fleet: ImmutableFleet) -> ssm.StringParameter:
    """The fleet's entry in its environment's registry, deployed with the fleet."""
    spec = fleet_spec(fleet)
    return ssm.StringParameter(
        fleet,
        "Registration",
        parameter_name=registered_fleet(fleet.environment, fleet.config.name),
        string_value=Stack.of(fleet).to_json_string(spec),
        description=f"phoenix {fleet.environment}: fleet {fleet.config.name}, as releases see it",
        tier=registry_tier(spec),
    )


def registry_arn(scope: Stack, environment: str, *, path: bool = False) -> str:
    """The registry's parameters (`path`: the registry's path itself, which
    GetParametersByPath is authorized against)."""
    registry = fleet_registry(environment)
    return parameter_arn(scope, registry if path else f"{registry}/*")


def grant_registry_reads(
    function: PhoenixFunction, environment: str, *, every: bool = False
) -> None:
    """Reading fleets by name from the registry; with `every`, listing all of them."""
    stack = Stack.of(function)
    function.add_to_role_policy(
        iam.PolicyStatement(actions=[REGISTRY_READ], resources=[registry_arn(stack, environment)])
    )
    name = fleet_registry(environment).lstrip("/")
    acknowledge_wildcard(
        function.execution_role,
        nag_arn(stack, "ssm", f"parameter/{name}/*"),
        "The environment's fleet registry: which fleet an event names is known only then.",
    )
    if every:
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[REGISTRY_LIST], resources=[registry_arn(stack, environment, path=True)]
            )
        )
