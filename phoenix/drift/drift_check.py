"""The drift check: a function the environment's schedule runs in each region with fleets
(EventBridge Scheduler), which finds what drifted from the controller's state and tells
of it, or releases the pointer AMI (phoenix/drift/runtime/check.py, docs/hygiene.md)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig
from phoenix.drift.runtime.check import DriftSettings
from phoenix.kernel.names import fleet_prefix
from phoenix.platform.functions import PhoenixFunction
from phoenix.platform.nag import acknowledge_wildcard, nag_arn
from phoenix.platform.roles import parameter_arn, put_events_on_default_bus
from phoenix.platform.schedules import invoke_on_schedule
from phoenix.platform.undelivered import Undelivered
from phoenix.release.ledger import ReleaseLedger
from phoenix.release.spec import REGISTRY_LIST, registry_arn

# What the check calls (a test compares its role with them).
DRIFT_LEDGER_CALLS = ("dynamodb:BatchGetItem",)
# Describe calls that support no resource-level permissions (Service Authorization
# Reference: DescribeAutoScalingGroups, DescribeInstances, DescribeListeners).
DRIFT_DESCRIBE_CALLS = (
    "autoscaling:DescribeAutoScalingGroups",
    "ec2:DescribeInstances",
    "elasticloadbalancing:DescribeListeners",
)


class DriftCheck(Construct):
    """The drift check's function and its schedule."""

    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, key: kms.IKey,
        ledger: ReleaseLedger,
    ) -> None:  # fmt: skip
        super().__init__(scope, id)
        self.function = PhoenixFunction(
            self,
            "Function",
            name="drift",
            handler="phoenix.drift.handlers.check.lambda_handler",
            description=f"phoenix {config.name}: finds fleets drifted from the controller's state",
            settings=DriftSettings(
                environment=config.name,
                service_name="phoenix-drift",
                table_name=ledger.table.table_name,
            ),
            config=config.functions,
            key=key,
        )
        # invoked asynchronously by the schedule: its last failure goes to the stack's
        # queue of undelivered events, whose first message raises an alarm
        Undelivered.of(self.function).asynchronous(self.function)
        ledger.grant(self.function, *DRIFT_LEDGER_CALLS)
        stack = Stack.of(self)
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[REGISTRY_LIST], resources=[registry_arn(stack, config.name, path=True)]
            )
        )
        parameters = parameter_arn(self, fleet_prefix(config.name, "*"))
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:GetParameters"], resources=[parameters])
        )
        acknowledge_wildcard(
            self.function.execution_role,
            nag_arn(stack, "ssm", f"parameter{fleet_prefix(config.name, '*')}"),
            "The controller-owned parameters of every fleet of the environment, which the "
            "check compares with what runs.",
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=list(DRIFT_DESCRIBE_CALLS), resources=["*"])
        )
        acknowledge_wildcard(
            self.function.execution_role,
            "*",
            "DescribeAutoScalingGroups, DescribeInstances and DescribeListeners support no "
            "resource-level permissions (Service Authorization Reference).",
        )
        self.function.add_to_role_policy(put_events_on_default_bus(self))
        check = config.drift_check
        self.schedule = invoke_on_schedule(
            self,
            self.function,
            what="the drift check's own function",
            description=f"phoenix {config.name}: the drift check",
            expression=check.schedule,
            enabled=check.enabled,
            payload={"check": "drift", "environment": config.name},
        )
