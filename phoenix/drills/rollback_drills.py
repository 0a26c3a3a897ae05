"""The rollback drills: a function the environment's schedule runs in each region with
fleets (EventBridge Scheduler), which proves each fleet's rollback target still launches
and passes health checks without touching traffic, and an alarm on the drills that fail
(phoenix/drills/runtime/drill.py, docs/hygiene.md)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig
from phoenix.drills.runtime.drill import DrillSettings
from phoenix.drills.runtime.temporary import DRILL_TAG
from phoenix.fleet.grants import fleet_tagged, grant_environment_fleets
from phoenix.kernel.settings import metrics_namespace
from phoenix.platform.functions import PhoenixFunction
from phoenix.platform.nag import acknowledge_wildcard
from phoenix.platform.roles import put_events_on_default_bus
from phoenix.platform.schedules import invoke_on_schedule
from phoenix.platform.undelivered import Undelivered
from phoenix.release.ledger import ReleaseLedger
from phoenix.release.spec import REGISTRY_LIST, registry_arn

SERVICE = "phoenix-drills"
# What the drill function calls (a test compares its role with them).
DRILL_LEDGER_CALLS = ("dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
DRILL_FLEET_CALLS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:UpdateAutoScalingGroup",
    "ec2:DescribeImages",
    "ec2:DescribeLaunchTemplateVersions",
    "elasticloadbalancing:DescribeTargetHealth",
    "ssm:GetParameters",
    # a rolling fleet's temporary instance, from the fleet's launch template only
    "ec2:DescribeInstances",
    "ec2:RunInstances",
    "iam:PassRole",
    "ec2:CreateTags",
)
# Support no resource-level permissions (Service Authorization Reference, Amazon EC2).
DRILL_DESCRIBES = ("ec2:DescribeSnapshots", "ec2:DescribeInstanceStatus")
DRILL_TERMINATE = "ec2:TerminateInstances"
# What EC2 asks of whoever launches an instance whose volumes the environment key
# encrypts (EC2 User Guide, "Amazon EBS encryption": permissions for IAM users).
EBS_KEY_CALLS = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


class RollbackDrills(Construct):
    """The drill function, its schedule and the alarm on failed drills."""

    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, key: kms.IKey,
        ledger: ReleaseLedger, topic: sns.ITopic,
    ) -> None:  # fmt: skip
        super().__init__(scope, id)
        self.function = PhoenixFunction(
            self,
            "Function",
            name="drills",
            handler="phoenix.drills.handlers.drill.lambda_handler",
            description=f"phoenix {config.name}: rollback drills",
            settings=DrillSettings(
                environment=config.name, service_name=SERVICE, table_name=ledger.table.table_name
            ),
            config=config.functions,
            key=key,
        )
        Undelivered.of(self.function).asynchronous(self.function)
        ledger.grant(self.function, *DRILL_LEDGER_CALLS)
        stack = Stack.of(self)
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[REGISTRY_LIST], resources=[registry_arn(stack, config.name, path=True)]
            )
        )
        grant_environment_fleets(
            self.function, self.function.execution_role, config.name, DRILL_FLEET_CALLS
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=list(DRILL_DESCRIBES), resources=["*"])
        )
        # only the instances a drill launched (tagged with its id), of this environment
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[DRILL_TERMINATE],
                resources=[stack.format_arn(service="ec2", resource="instance", resource_name="*")],
                conditions={
                    **fleet_tagged(config.name),
                    "Null": {f"aws:ResourceTag/{DRILL_TAG}": "false"},
                },
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(EBS_KEY_CALLS),
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"ec2.{stack.region}.amazonaws.com"}
                },
            )
        )
        self.function.add_to_role_policy(put_events_on_default_bus(self))
        drills = config.rollback_drills
        self.schedule = invoke_on_schedule(
            self,
            self.function,
            what="the drill function",
            description=f"phoenix {config.name}: rollback drills",
            expression=drills.schedule,
            enabled=drills.enabled,
            payload={"drill": "run", "environment": config.name},
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "Failed",
            # `phoenix-<env>--`: not a fleet's alarm name, so it rolls nothing back
            alarm_name=f"phoenix-{config.name}--rollback-drills-failed",
            alarm_description=f"phoenix {config.name}: a rollback drill failed, so a fleet's "
            "rollback target may not launch (the Rollback Drill Failed event says why)",
            metric=cloudwatch.Metric(
                namespace=metrics_namespace(config.name),
                metric_name="RollbackDrillsFailed",
                dimensions_map={"service": SERVICE},
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(actions.SnsAction(topic))
        acknowledge_wildcard(
            self.function.execution_role,
            "*",
            "DescribeSnapshots and DescribeInstanceStatus support no resource-level "
            "permissions (Service Authorization Reference).",
        )
