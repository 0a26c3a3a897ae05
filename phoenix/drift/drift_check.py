"""The drift check: a function the environment's schedule runs in each region with fleets
(EventBridge Scheduler), which finds what drifted from the controller's state and tells
of it, or releases the pointer AMI (phoenix/drift/runtime/check.py, docs/hygiene.md)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig
from phoenix.drift.runtime.check import DriftSettings
from phoenix.drift.stack_resources import read_permissions
from phoenix.kernel.names import FLEET_STACKS, fleet_prefix
from phoenix.platform.functions import PhoenixFunction
from phoenix.platform.nag import acknowledge_wildcard, nag_arn
from phoenix.platform.roles import parameter_arn, put_events_on_default_bus
from phoenix.platform.schedules import invoke_on_schedule
from phoenix.platform.undelivered import Undelivered
from phoenix.release.ledger import ReleaseLedger
from phoenix.release.spec import REGISTRY_LIST, registry_arn

# What the check calls (a test compares its role with them).
DRIFT_LEDGER_CALLS = ("dynamodb:BatchGetItem",)
# Drift detection on the fleets' stacks: started by one run, read by the next.
STACK_DRIFT_CALLS = (
    "cloudformation:DetectStackDrift",
    "cloudformation:DescribeStackResourceDrifts",
)
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
        self._grant_stack_drift(stack)
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

    def _grant_stack_drift(self, stack: Stack) -> None:
        """Drift detection on this region's stacks of fleets (this one, and its fleet
        stacks), and the reads CloudFormation makes with the check's role for it."""
        names = (stack.stack_name, f"{stack.stack_name}{FLEET_STACKS}*")
        stacks = [
            stack.format_arn(service="cloudformation", resource="stack", resource_name=f"{n}/*")
            for n in names
        ]
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=list(STACK_DRIFT_CALLS), resources=stacks)
        )
        for name in names:
            acknowledge_wildcard(
                self.function.execution_role,
                nag_arn(stack, "cloudformation", f"stack/{name}/*"),
                "The region's stacks of fleets: a stack's ARN ends in an ID CloudFormation "
                "gives it when it is created.",
            )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=read_permissions(), resources=["*"])
        )
        for action in read_permissions():
            if action.endswith("*"):
                Validations.of(self.function.execution_role).acknowledge(
                    Acknowledgment(
                        id=f"AwsSolutions::AwsSolutions-IAM5[Action::{action}]",
                        reason="A read permission CloudFormation's resource schema lists for "
                        "drift detection on a fleet's Auto Scaling groups, as the schema "
                        "writes it.",
                    )
                )
