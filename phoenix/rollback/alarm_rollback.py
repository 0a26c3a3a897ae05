"""The rollback function and its rules: alarms to ALARM, and `phoenix` requests.

See docs/rollback.md. The function (phoenix/rollback/runtime/) rolls a release back on
an alarm of its fleet or on `Rollback Requested`, and pauses or resumes a fleet's
releases.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig
from phoenix.fleet.grants import grant_environment_fleets
from phoenix.kernel.names import release_state_machine
from phoenix.platform.functions import PhoenixFunction
from phoenix.platform.nag import acknowledge_wildcard, nag_arn
from phoenix.platform.patterns import fleet_alarms_raised
from phoenix.platform.roles import put_events_on_default_bus
from phoenix.platform.undelivered import lambda_target
from phoenix.release.ledger import ReleaseLedger
from phoenix.release.spec import grant_registry_reads
from phoenix.rollback.runtime.models import RollbackSettings

# What the rollback function calls (a test compares its role with this list).
ROLLBACK_LEDGER_CALLS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
ROLLBACK_FLEET_CALLS = (
    "elasticloadbalancing:ModifyListener",
    "autoscaling:RollbackInstanceRefresh",
    "autoscaling:DescribeInstanceRefreshes",
    "autoscaling:UpdateAutoScalingGroup",
    "ssm:PutParameter",
)
REQUESTS = [
    "Rollback Requested",
    "Releases Paused",
    "Releases Resumed",
    "Canary Step Approved",
    "Canary Step Rejected",
]


class AlarmRollback(Construct):
    """The rollback function, with a rule for the environment's alarms going to ALARM
    (matched by the name prefix `phoenix-<env>-`) and one for `phoenix` requests."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        ledger: ReleaseLedger,
        state_machine: sfn.StateMachine,
    ) -> None:
        super().__init__(scope, id)
        self.function = PhoenixFunction(
            self,
            "Function",
            name="rollback",
            handler="phoenix.rollback.runtime.handler.lambda_handler",
            description=f"phoenix {config.name}: rolls back on alarms and requests",
            settings=RollbackSettings(
                environment=config.name,
                service_name="phoenix-rollback",
                table_name=ledger.table.table_name,
                state_machine_arn=state_machine.state_machine_arn,
                alarm_rollback_horizon_hours=config.alarm_rollback_horizon_hours,
            ),
            config=config.functions,
            key=key,
        )
        ledger.grant(self.function, *ROLLBACK_LEDGER_CALLS)
        grant_registry_reads(self.function, config.name)
        grant_environment_fleets(
            self.function, self.function.execution_role, config.name, ROLLBACK_FLEET_CALLS
        )
        state_machine.grant_start_execution(self.function)
        stack = Stack.of(self)
        machine = release_state_machine(config.name)
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StopExecution"],
                resources=[
                    stack.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{machine}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        executions = nag_arn(stack, "states", f"execution:{machine}:*")
        acknowledge_wildcard(
            self.function.execution_role,
            executions,
            "Stopping the release being rolled back: any execution of this "
            "environment's release state machine (execution names are per event).",
        )
        # A decision on a held canary step answers its task token. SendTaskSuccess and
        # SendTaskFailure support no resource-level permissions (Service Authorization
        # Reference, AWS Step Functions: no resource type): the token names the task.
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:SendTaskSuccess", "states:SendTaskFailure"], resources=["*"]
            )
        )
        acknowledge_wildcard(
            self.function.execution_role,
            "*",
            "states:SendTaskSuccess and states:SendTaskFailure support no resource-level "
            "permissions; the token a decision answers is read from this environment's ledger.",
        )
        self.function.add_to_role_policy(put_events_on_default_bus(self))
        events.Rule(
            self,
            "AlarmRaised",
            description=f"phoenix {config.name}: a fleet's alarm in ALARM rolls back",
            event_pattern=fleet_alarms_raised(config.name),
            targets=[lambda_target(self.function)],
        )
        events.Rule(
            self,
            "Requested",
            description=f"phoenix {config.name}: rollback, pause, resume and canary "
            "decisions by request",
            event_pattern=events.EventPattern(source=["phoenix"], detail_type=REQUESTS),
            targets=[lambda_target(self.function)],
        )
