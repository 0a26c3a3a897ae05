"""A function an EventBridge Scheduler schedule invokes with a fixed input (the drift
check, the rollback drills): the schedule, and the role it invokes the function with."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from constructs import Construct

from phoenix.platform.nag import acknowledge_wildcard


def invoke_on_schedule(
    scope: Construct,
    function: lambda_.Function,
    *,
    what: str,
    description: str,
    expression: str,
    enabled: bool,
    payload: dict[str, Any],
) -> scheduler.Schedule:
    """`Schedule` (and its `ScheduleRole`) in `scope`: `function` invoked with `payload`
    on the Scheduler `expression` (its rate or cron expression, Scheduler user guide,
    "Schedule types"); `what` names the function in the role's acknowledgment."""
    stack = Stack.of(scope)
    # The schedule's role: this account's Scheduler may assume it ("Set up the execution
    # role", EventBridge Scheduler user guide); LambdaInvoke grants it the invocation of
    # the function (CDK adds ':*', its versions and aliases).
    role = iam.Role(
        scope,
        "ScheduleRole",
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com",
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        ),
    )
    function_id = stack.get_logical_id(function.node.default_child)  # type: ignore[arg-type]
    acknowledge_wildcard(
        role,
        f"<{function_id}.Arn>:*",
        f"The schedule invokes {what}; ':*' covers its versions and aliases, which CDK "
        "grants with the function.",
    )
    return scheduler.Schedule(
        scope,
        "Schedule",
        description=description,
        schedule=scheduler.ScheduleExpression.expression(expression),
        enabled=enabled,
        target=targets.LambdaInvoke(
            function,
            input=scheduler.ScheduleTargetInput.from_object(payload),
            # a run that could not happen is followed by the next one
            max_event_age=Duration.hours(1),
            retry_attempts=2,
            role=role,
        ),
    )
