"""The release's `ShiftTraffic` state: a step's weights set on the fleet's listener by a
direct ModifyListener integration, no Lambda (docs/release.md, Steps)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from phoenix.fleet.grants import fleet_tagged, listeners
from phoenix.kernel.fleet_calls import weighted_forward


def shift_traffic(scope: Construct, environment: str) -> tasks.CallAwsService:
    """The listener's weights for this step: a direct ModifyListener, no Lambda."""
    shift = tasks.CallAwsService(
        scope,
        "ShiftTraffic",
        service="elasticloadbalancingv2",
        action="modifyListener",
        iam_action="elasticloadbalancing:ModifyListener",
        iam_resources=[listeners(Stack.of(scope))],
        parameters={
            "ListenerArn": sfn.JsonPath.string_at("$.fleet_spec.listener"),
            # in the order the fleet's template forwards (Plan.first_target_group): the
            # listener stays as its template writes it, which drift detection compares
            "DefaultActions": weighted_forward(
                [
                    (
                        sfn.JsonPath.string_at("$.plan.first_target_group"),
                        sfn.JsonPath.number_at("$.step.weights.first"),
                    ),
                    (
                        sfn.JsonPath.string_at("$.plan.second_target_group"),
                        sfn.JsonPath.number_at("$.step.weights.second"),
                    ),
                ]
            ),
        },
        result_selector={"shifted": True},
        result_path="$.shifted",
    )
    # Only the environment's fleets' listeners, by their tag (as the functions' grants):
    # CallAwsService takes resources only, so its statement (a protected property of
    # the task) gets the condition.
    for statement in shift._task_policies or []:
        for operator, values in fleet_tagged(environment).items():
            statement.add_condition(operator, values)
    shift.add_retry(
        errors=["ElasticLoadBalancingV2.ThrottlingException"],
        interval=Duration.seconds(1),
        max_attempts=3,
        backoff_rate=2,
    )
    return shift
