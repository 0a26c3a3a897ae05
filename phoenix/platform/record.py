"""The environment record: one SSM parameter per environment and region
(`/phoenix-environments/<env>`) telling the `phoenix` CLI where the controller is, so a
person needs only the environment's name (phoenix/cli/)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn

from phoenix.kernel.names import environment_record


def record_environment(
    stack: Stack,
    environment: str,
    *,
    table: dynamodb.ITable,
    state_machine: sfn.IStateMachine,
    topic: sns.ITopic,
    primary: bool,
) -> ssm.StringParameter:
    """The record: the ledger table, the release state machine and the topic (JSON)."""
    return ssm.StringParameter(
        stack,
        "EnvironmentRecord",
        parameter_name=environment_record(environment),
        description=f"phoenix {environment}: where the CLI finds the controller",
        string_value=stack.to_json_string(
            {
                "environment": environment,
                "table": table.table_name,
                "state_machine": state_machine.state_machine_arn,
                "topic": topic.topic_arn,
                "primary": primary,
            }
        ),
    )
