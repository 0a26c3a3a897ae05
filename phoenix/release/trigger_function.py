"""The release trigger function and its grants (the rules that reach it are the
orchestrator's)."""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig
from phoenix.kernel.names import (
    FLEET_STACKS,
    image_name,
    plan_state_machine,
    release_pointer,
)
from phoenix.platform.functions import PhoenixFunction
from phoenix.platform.nag import acknowledge_wildcard, nag_arn
from phoenix.platform.roles import parameter_arn
from phoenix.release.runtime.settings import TriggerSettings
from phoenix.release.spec import grant_registry_reads


def trigger_function(
    scope: Construct,
    config: EnvironmentConfig,
    key: kms.IKey,
    image_region: str | None,
    state_machine: sfn.StateMachine,
) -> PhoenixFunction:
    """The release trigger: starts a release per subscribed fleet (handlers/trigger.py),
    granted exactly its calls: StartExecution, the registry's reads, every fleet's
    release pointer, and GetImage on this environment's images where they are baked."""
    images = [image_name(config.name, pipeline.name) for pipeline in config.image_pipelines]
    trigger = PhoenixFunction(
        scope,
        "Trigger",
        name="release_trigger",
        handler="phoenix.release.handlers.trigger.lambda_handler",
        description=f"phoenix {config.name}: starts a release per subscribed fleet",
        settings=TriggerSettings(
            environment=config.name,
            service_name="phoenix-release-trigger",
            state_machine_arn=state_machine.state_machine_arn,
            image_region=image_region or Aws.REGION,
            stack_id=Aws.STACK_ID,
            fleet_stacks=f"{Aws.STACK_NAME}{FLEET_STACKS}",
            plans=json.dumps({plan.image_pipeline: plan.name for plan in config.plans}),
            runs_plans=image_region is None,
            plan_state_machine_prefix=_plan_machine(scope, config, ""),
            promoted_from=config.promotion.after if config.promotion else "",
        ),
        config=config.functions,
        key=key,
    )
    state_machine.grant_start_execution(trigger)
    if config.plans and image_region is None:
        trigger.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"],
                resources=[_plan_machine(scope, config, plan.name) for plan in config.plans],
            )
        )
    stack = Stack.of(scope)
    # The fleets and their pipelines, from the registry; a deploy's releases are of
    # each fleet's release pointer (GetParameters).
    grant_registry_reads(trigger, config.name, every=True)
    pointers = release_pointer(config.name, "*").lstrip("/")
    trigger.add_to_role_policy(
        iam.PolicyStatement(
            actions=["ssm:GetParameters"],
            resources=[parameter_arn(scope, pointers)],
        )
    )
    acknowledge_wildcard(
        trigger.execution_role,
        nag_arn(stack, "ssm", f"parameter/{pointers}"),
        "Every fleet's release pointer: a deploy releases each fleet of the registry.",
    )
    # GetImage on the images where they are baked (image_region), from any region.
    trigger.add_to_role_policy(
        iam.PolicyStatement(
            actions=["imagebuilder:GetImage"],
            resources=[
                stack.format_arn(
                    service="imagebuilder",
                    region=image_region,
                    resource="image",
                    resource_name=f"{name}/*",
                )
                for name in images
            ],
        )
    )
    for name in images:
        acknowledge_wildcard(
            trigger.execution_role,
            # cdk-nag names the images' region, not the stack's
            nag_arn(stack, "imagebuilder", f"image/{name}/*", region=image_region),
            "Every build version of this environment's pipeline image; "
            "versions and build numbers are only known when baked.",
        )
    return trigger


def _plan_machine(scope: Construct, config: EnvironmentConfig, plan: str) -> str:
    """The ARN of a plan's state machine in this region (`plan` empty: their prefix)."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=plan_state_machine(config.name, plan),
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
