"""PlanOrchestrator: a state machine per release plan, the plan function its steps call,
and the function that resumes or abandons a halted run.

Plans run in the environment's primary region (the trigger there starts them); a wave
in another region releases there through the plan function. Each function is granted
exactly the calls it makes.
"""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig
from phoenix.config.plans import PlanConfig, Wave
from phoenix.kernel.names import (
    environment_key,
    fleet_registry,
    plan_state_machine,
    release_state_machine,
)
from phoenix.plan.definition import PlanDefinition, layout
from phoenix.plan.runtime.settings import PlanSettings
from phoenix.platform.encryption import autoscaling_role
from phoenix.platform.functions import PhoenixFunction
from phoenix.platform.nag import acknowledge_wildcard, nag_arn
from phoenix.platform.observability import log_retention
from phoenix.platform.patterns import phoenix_events
from phoenix.platform.roles import parameter_arn, put_events_on_default_bus
from phoenix.platform.undelivered import lambda_target, topic_target
from phoenix.release.ledger import ReleaseLedger

# The plan state machine's lifetime: a run waits out blocked windows, bakes and halts.
PLAN_TIMEOUT = Duration.days(90)


class PlanOrchestrator(Construct):
    """One Standard state machine per plan of `config`, named `phoenix-<env>-plan-<plan>`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        ledger: ReleaseLedger,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        # The release state machine by its name: its ARN then holds no reference, and
        # what CDK grants on its executions names it.
        release = sfn.StateMachine.from_state_machine_name(
            self, "Release", release_state_machine(config.name)
        )
        self._environment = config.name
        stack = Stack.of(self)
        settings = PlanSettings(
            environment=config.name,
            service_name="phoenix-plan",
            table_name=ledger.table.table_name,
            release_state_machine_arn=release.state_machine_arn,
            earlier=json.dumps([peer.name for peer in config.promotions.earlier]),
            autoscaling_role_arn=autoscaling_role(stack.account, stack.partition)
            if config.promotions.from_another_account
            else "",
            key_parameter=environment_key(config.name)
            if config.promotions.to_another_account
            else "",
        )
        self.step = PhoenixFunction(
            self,
            "Step",
            name="plan_step",
            handler="phoenix.plan.handlers.plan_step.lambda_handler",
            description=f"phoenix {config.name}: the steps of a release plan",
            settings=settings,
            config=config.functions,
            key=key,
            timeout=Duration.seconds(60),
        )
        ledger.grant(self.step, "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem")
        if config.promotion is not None:
            # promotable looks for a rollback of the image's AMIs in earlier environments
            ledger.grant(self.step, "dynamodb:Query")
        self.step.add_to_role_policy(put_events_on_default_bus(self))
        all_waves = [config.waves(plan) for plan in config.plans]
        regions = sorted({w.region or stack.region for waves in all_waves for w in waves})
        remote = [r for r in regions if r != stack.region and r is not None]
        # halt reads how each release of the wave ended; check_release polls remote ones
        self.step.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution"],
                resources=[self._release_in(r, executions=True) for r in regions],
            )
        )
        if remote:
            self.step.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["states:StartExecution"],
                    resources=[self._release_in(region) for region in remote],
                )
            )
        if any(w.min_requests for waves in all_waves for w in waves):
            self._grant_request_counts(config, regions)
        executions = f"execution:{release_state_machine(config.name)}:*"
        for region in regions:
            acknowledge_wildcard(
                self.step.execution_role,
                nag_arn(stack, "states", executions, region=region),
                "A plan's releases: executions of the release state machine, named at run time.",
            )
        self._grant_promotion(config, regions)
        self.control = self._control(config, key, ledger, settings)
        self._promotion_rules(config, topic)
        self.state_machines = {
            plan.name: self._state_machine(config, plan, waves, key, release)
            for plan, waves in zip(config.plans, all_waves, strict=True)
        }

    def _state_machine(
        self,
        config: EnvironmentConfig,
        plan: PlanConfig,
        waves: list[Wave],
        key: kms.IKey,
        release: sfn.IStateMachine,
    ) -> sfn.StateMachine:
        blocked = [w.model_dump(mode="json") for w in plan.blocked]
        definition = PlanDefinition(
            self,
            f"Steps-{plan.name}",
            plan_layout=layout(waves, blocked),
            step=self.step,
            release=release,
            promotion=config.promotion,
        )
        log_group = logs.LogGroup(
            self,
            f"ExecutionLogs-{plan.name}",
            encryption_key=key,
            retention=log_retention(config.functions.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        machine = sfn.StateMachine(
            self,
            f"StateMachine-{plan.name}",
            state_machine_name=plan_state_machine(config.name, plan.name),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition.start),
            timeout=PLAN_TIMEOUT,
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        acknowledge_wildcard(
            machine,
            "*",
            "Step Functions log delivery (logs:*LogDelivery*, DescribeLogGroups) and "
            "X-Ray (PutTraceSegments) support no resource-level permissions.",
        )
        self._acknowledge_machine(machine, config.name)
        return machine

    def _acknowledge_machine(self, machine: sfn.StateMachine, environment: str) -> None:
        """The wildcards of what CDK grants a plan's state machine: invoking the plan
        function (its versions), the releases' executions (startExecution.sync:2 may
        describe and stop them), and its own Distributed Map's child executions."""
        stack = Stack.of(self)
        step = stack.get_logical_id(self.step.node.default_child)  # type: ignore[arg-type]
        acknowledge_wildcard(
            machine,
            f"<{step}.Arn>:*",
            "Step Functions invokes the plan function; ':*' covers its versions and aliases.",
        )
        release = release_state_machine(environment)
        acknowledge_wildcard(
            machine,
            nag_arn(stack, "states", f"execution:{release}*"),
            "startExecution.sync:2 describes and stops the release executions it starts, "
            "named at run time.",
        )
        logical = stack.get_logical_id(machine.node.default_child)  # type: ignore[arg-type]
        itself = '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"' + logical + '"}]}]}'
        for children in (":*", "/*:*"):
            acknowledge_wildcard(
                machine,
                nag_arn(stack, "states", f"execution:{itself}{children}"),
                "The Distributed Map's child executions (one per fleet of a wave), "
                "named by Step Functions.",
            )

    def _control(
        self,
        config: EnvironmentConfig,
        key: kms.IKey,
        ledger: ReleaseLedger,
        settings: PlanSettings,
    ) -> PhoenixFunction:
        control = PhoenixFunction(
            self,
            "Control",
            name="plan_control",
            handler="phoenix.plan.handlers.plan_control.lambda_handler",
            description=f"phoenix {config.name}: resumes or abandons a halted plan run",
            settings=settings.model_copy(update={"service_name": "phoenix-plan-control"}),
            config=config.functions,
            key=key,
        )
        ledger.grant(control, "dynamodb:GetItem", "dynamodb:UpdateItem")
        if config.promotions.earlier:
            # an earlier environment's rollback is recorded against its AMI
            ledger.grant(control, "dynamodb:PutItem")
        # SendTaskSuccess supports no resource-level permissions (Service Authorization
        # Reference, AWS Step Functions).
        control.add_to_role_policy(
            iam.PolicyStatement(actions=["states:SendTaskSuccess"], resources=["*"])
        )
        acknowledge_wildcard(
            control.execution_role,
            "*",
            "states:SendTaskSuccess supports no resource-level permissions; the token comes "
            "from the halted run's ledger item.",
        )
        decisions = ["Plan Resume Requested", "Plan Abandon Requested"]
        if config.promotion is not None and config.promotion.approval:
            decisions += ["Promotion Approved", "Promotion Rejected"]
        events.Rule(
            self,
            "Decisions",
            description=f"phoenix {config.name}: decisions on waiting plan runs",
            event_pattern=phoenix_events(decisions, [config.name]),
            targets=[lambda_target(control)],
        )
        earlier = config.promotions.earlier
        if earlier:
            # Each earlier environment sends its rollbacks here (in its own account and
            # region, it forwards them to this bus): the AMI is then never promoted here.
            events.Rule(
                self,
                "EarlierRollbacks",
                description=f"phoenix {config.name}: rollbacks in earlier environments",
                event_pattern=phoenix_events(
                    ["Release Rolled Back"], [peer.name for peer in earlier]
                ),
                targets=[lambda_target(control)],
            )
        return control

    def _promotion_rules(self, config: EnvironmentConfig, topic: sns.ITopic) -> None:
        """A promoted image that awaits approval is announced to the environment's topic
        as a short text (the notification target the config requires for approvals)."""
        if config.promotion is None or not config.promotion.approval:
            return
        detail = events.EventField.from_path
        events.Rule(
            self,
            "ApprovalRequests",
            description=f"phoenix {config.name}: promoted images awaiting approval, to the topic",
            event_pattern=phoenix_events(["Promotion Approval Requested"], [config.name]),
            targets=[
                topic_target(
                    self,
                    topic,
                    events.RuleTargetInput.from_text(
                        f"phoenix {config.name}: plan {detail('$.detail.plan')} run "
                        f"{detail('$.detail.run')} waits for approval to release image "
                        f"{detail('$.detail.image')}, which went through every wave of "
                        f"{detail('$.detail.promoted_from')}. Answer with a phoenix event "
                        "(detail-type Promotion Approved or Promotion Rejected) whose detail "
                        "names environment, plan, run, requested_by and reason."
                    ),
                )
            ],
        )

    def _grant_promotion(self, config: EnvironmentConfig, regions: list[str]) -> None:
        """Across accounts: a succeeded plan names this environment's key in each region
        (its parameter there); a promoted run grants this account's Auto Scaling role the
        use of the earlier account's keys, and no other grantee."""
        stack = Stack.of(self)
        promotions = config.promotions
        if promotions.to_another_account:
            name = environment_key(config.name)
            self.step.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["ssm:GetParameter"],
                    resources=[parameter_arn(self, name.lstrip("/"), region=r) for r in regions],
                )
            )
        if promotions.from_another_account and promotions.source is not None:
            keys = stack.format_arn(
                service="kms",
                region="*",
                account=promotions.source.account,
                resource="key",
                resource_name="*",
            )
            self.step.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["kms:CreateGrant"],
                    resources=[keys],
                    conditions={
                        "StringEquals": {
                            "kms:GranteePrincipal": autoscaling_role(stack.account, stack.partition)
                        }
                    },
                )
            )
            acknowledge_wildcard(
                self.step.execution_role,
                nag_arn(stack, "kms", "key/*", region="*", account=promotions.source.account),
                "The earlier environment's keys (one per region, their ids known only from "
                "its events): CreateGrant only, for this account's Auto Scaling role only.",
            )

    def _grant_request_counts(self, config: EnvironmentConfig, regions: list[str]) -> None:
        """A bake's request count: the wave's fleets' specs (their load balancers) from
        the registry of their region, and GetMetricData, which supports no resource-level
        permissions."""
        stack = Stack.of(self)
        name = fleet_registry(config.name).lstrip("/")
        self.step.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameters"],
                resources=[parameter_arn(self, f"{name}/*", region=region) for region in regions],
            )
        )
        self.step.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        for region in regions:
            acknowledge_wildcard(
                self.step.execution_role,
                nag_arn(stack, "ssm", f"parameter/{name}/*", region=region),
                "The environment's fleet registry: a wave's fleets are known only at run time.",
            )
        acknowledge_wildcard(
            self.step.execution_role,
            "*",
            "cloudwatch:GetMetricData supports no resource-level permissions.",
        )

    def _release_in(self, region: str, *, executions: bool = False) -> str:
        """The release state machine in `region` (same name in every region), or with
        `executions`, its executions."""
        name = release_state_machine(self._environment)
        return Stack.of(self).format_arn(
            service="states",
            region=region,
            resource="execution" if executions else "stateMachine",
            resource_name=f"{name}:*" if executions else name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
