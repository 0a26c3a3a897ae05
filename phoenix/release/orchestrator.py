"""ReleaseOrchestrator: the release state machine, its step functions, the ledger, and
the rules that start releases and resume them.

The release trigger function receives `EC2 Image Builder Image State Change` events for
this environment's pipelines, `phoenix` `Release Requested` events and this stack's
`CloudFormation Stack Status Change` to UPDATE_COMPLETE (a deploy), and starts the
release state machine once per subscribed fleet. The state machine (definition.py) runs
the release (docs/architecture.md); the refresh event receiver completes its instance
refresh waits. Each function is granted exactly the calls it makes.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig
from phoenix.fleet.grants import grant_environment_fleets
from phoenix.kernel.ledger import LOCK_HOLD, ROLLBACK_TARGET_TAG
from phoenix.kernel.names import (
    FLEET_STACKS,
    HOOK_TAG,
    fleet_registry,
    image_name,
    release_state_machine,
)
from phoenix.kernel.settings import ReleaseSettings
from phoenix.platform.functions import PhoenixFunction
from phoenix.platform.nag import acknowledge_wildcard, nag_arn
from phoenix.platform.observability import log_retention
from phoenix.platform.roles import put_events_on_default_bus
from phoenix.platform.undelivered import lambda_target
from phoenix.release.definition import ReleaseDefinition, ReleaseFunctions
from phoenix.release.ledger import ReleaseLedger
from phoenix.release.runtime.cleanup import STATUS_CHANGE, UNHANDLED, CleanupSettings
from phoenix.release.runtime.events import IMAGE_STATE_CHANGE, STACK_STATUS_CHANGE
from phoenix.release.runtime.settings import RefreshEventSettings
from phoenix.release.spec import (
    STEP_CALLS,
    STEP_TIMEOUTS,
    grant_registry_reads,
    rollback_window_seconds,
    step_handler,
)
from phoenix.release.trigger_function import trigger_function
from phoenix.rollback.alarm_rollback import AlarmRollback


class ReleaseOrchestrator(Construct):
    """The release state machine and the rule that starts it for this environment's images.

    The rule matches `EC2 Image Builder Image State Change` events with status AVAILABLE
    for images named `phoenix-<env>-<pipeline>` in this account, baked in `image_region`
    (default: this region; a disaster recovery region's controller names the primary,
    whose stack forwards those events to its bus), and the trigger may read only those
    images. Executions are logged (ALL, with data) to a log group encrypted with `key`
    and traced with X-Ray.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        image_region: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        environment = config.name
        self._image_region = image_region
        self.ledger = ReleaseLedger(self, "Ledger", key=key)
        self.steps = self._step_functions(config, key)
        pipelines = [p.name for p in config.image_pipelines]
        log_retention_days = config.functions.log_retention_days
        log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            encryption_key=key,
            retention=log_retention(log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        definition = ReleaseDefinition(
            self,
            "Steps",
            functions=self.steps,
            environment=environment,
        )
        window = max((rollback_window_seconds(f) for f in config.fleets), default=0)
        # The lock's hold, then the rollback window the old slot stays warm for.
        lifetime = LOCK_HOLD.total_seconds() + window + 3600
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=release_state_machine(environment),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition.start),
            timeout=Duration.seconds(lifetime),
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        acknowledge_wildcard(
            self.state_machine,
            "*",
            "Step Functions log delivery (logs:*LogDelivery*, DescribeLogGroups) and "
            "X-Ray (PutTraceSegments) support no resource-level permissions.",
        )
        acknowledge_wildcard(
            self.state_machine,
            nag_arn(Stack.of(self), "ssm", f"parameter{fleet_registry(environment)}/*"),
            "ReadFleet reads the spec of the fleet an execution releases, named in its input.",
        )
        acknowledge_wildcard(
            self.state_machine,
            nag_arn(Stack.of(self), "elasticloadbalancing", "listener/app/*"),
            "ShiftTraffic: listeners tagged as this environment's fleets' only.",
        )
        # SendTaskSuccess, the one call the receiver makes, supports no resource-level
        # permissions (Service Authorization Reference, AWS Step Functions): "*".
        # (CDK's grant_task_response names the state machine and adds Failure and
        # Heartbeat, which the receiver never calls.)
        self.refresh_events.add_to_role_policy(
            iam.PolicyStatement(actions=["states:SendTaskSuccess"], resources=["*"])
        )
        acknowledge_wildcard(
            self.refresh_events.execution_role,
            "*",
            "states:SendTaskSuccess supports no resource-level permissions; a task token "
            "is unguessable and names its own execution.",
        )
        stack = Stack.of(self)
        for function in vars(self.steps).values():
            resource = stack.get_logical_id(function.node.default_child)
            acknowledge_wildcard(
                self.state_machine,
                f"<{resource}.Arn>:*",
                "Step Functions invokes the release's own step function; ':*' "
                "covers its versions and aliases, which CDK grants with the function.",
            )
        self._cleanup(config, lifetime)
        self.trigger = trigger_function(self, config, key, image_region, self.state_machine)
        self.rollback = AlarmRollback(
            self,
            "Rollback",
            config=config,
            key=key,
            ledger=self.ledger,
            state_machine=self.state_machine,
        )
        images = [
            {
                "prefix": f"arn:{Aws.PARTITION}:imagebuilder:{image_region or Aws.REGION}:"
                f"{Aws.ACCOUNT_ID}:image/{image_name(environment, pipeline)}/"
            }
            for pipeline in pipelines
        ]
        self.image_available = events.Rule(
            self,
            "ImageAvailable",
            description=f"phoenix {environment}: a baked image starts a release",
            event_pattern=events.EventPattern(
                source=["aws.imagebuilder"],
                detail_type=[IMAGE_STATE_CHANGE],
                detail={"state": {"status": ["AVAILABLE"]}},
            ),
            targets=[lambda_target(self.trigger)],
        )
        self.release_requested = events.Rule(
            self,
            "ManualRelease",
            description=f"phoenix {environment}: a release asked for by hand",
            event_pattern=events.EventPattern(
                source=["phoenix"], detail_type=["Release Requested"]
            ),
            targets=[lambda_target(self.trigger)],
        )
        self.deployed = events.Rule(
            self,
            "Deployed",
            description=f"phoenix {environment}: a deploy's launch template changes go out "
            "as a release",
            event_pattern=events.EventPattern(
                source=["aws.cloudformation"],
                detail_type=[STACK_STATUS_CHANGE],
                detail={"status-details": {"status": ["UPDATE_COMPLETE"]}},
            ),
            targets=[lambda_target(self.trigger)],
        )
        # This stack, and its fleet stacks by their names' prefix (phoenix/stage.py).
        deployed = self.deployed.node.default_child
        assert isinstance(deployed, events.CfnRule)
        deployed.add_property_override(
            "EventPattern.resources", [Aws.STACK_ID, {"prefix": self._fleet_stacks_arn()}]
        )
        # CDK types `resources` as exact strings; a prefix match needs the raw pattern.
        rule = self.image_available.node.default_child
        assert isinstance(rule, events.CfnRule)
        rule.add_property_override("EventPattern.resources", images)

    def _fleet_stacks_arn(self) -> str:
        """The start of the ARNs of this stack's fleet stacks (`<stack>-fleets-<n>`)."""
        return Stack.of(self).format_arn(
            service="cloudformation",
            resource="stack",
            resource_name=f"{Aws.STACK_NAME}{FLEET_STACKS}",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    def _step_functions(self, config: EnvironmentConfig, key: kms.IKey) -> ReleaseFunctions:
        """One function per step, each granted exactly what it calls (STEP_CALLS)."""
        table = self.ledger.table
        made: dict[str, PhoenixFunction] = {}
        for name, (table_actions, fleet_actions, other) in STEP_CALLS.items():
            function = PhoenixFunction(
                self,
                name.title().replace("_", ""),
                name=name,
                handler=step_handler(name),
                description=f"phoenix {config.name}: {name.replace('_', ' ')}",
                settings=ReleaseSettings(
                    environment=config.name,
                    service_name=f"phoenix-{name.replace('_', '-')}",
                    table_name=table.table_name,
                ),
                config=config.functions,
                key=key,
                timeout=Duration.seconds(STEP_TIMEOUTS.get(name, 60)),
            )
            self.ledger.grant(function, *table_actions)
            grant_environment_fleets(function, function.execution_role, config.name, fleet_actions)
            for action in other:
                function.add_to_role_policy(self._scoped(function, action, config))
            made[name] = function
        self.cleanup = made["release_cleanup"]
        self.refresh_events = PhoenixFunction(
            self,
            "RefreshEvents",
            name="refresh_events",
            handler="phoenix.release.handlers.refresh_events.lambda_handler",
            description=f"phoenix {config.name}: instance refresh events resume releases",
            settings=RefreshEventSettings(
                environment=config.name,
                service_name="phoenix-refresh-events",
                table_name=table.table_name,
            ),
            config=config.functions,
            key=key,
        )
        self.ledger.grant(self.refresh_events, "dynamodb:GetItem", "dynamodb:UpdateItem")
        events.Rule(
            self,
            "RefreshEnded",
            description=f"phoenix {config.name}: instance refresh events of this environment",
            event_pattern=events.EventPattern(
                source=["aws.autoscaling"],
                detail_type=events.Match.prefix("EC2 Auto Scaling Instance Refresh"),
                detail={"AutoScalingGroupName": events.Match.prefix(f"phoenix-{config.name}-")},
            ),
            targets=[lambda_target(self.refresh_events)],
        )
        return ReleaseFunctions(
            preflight=made["release_preflight"],
            prepare=made["release_prepare"],
            deploy=made["release_deploy"],
            gate=made["release_gate"],
            rollback=made["release_rollback"],
            finalize=made["release_finalize"],
            hold=self.cleanup,
            pretraffic=made["release_pretraffic"],
        )

    def _cleanup(self, config: EnvironmentConfig, lifetime: float) -> None:
        """The cleanup function (made with the steps: HoldLock invokes it) learns the state
        machine, its timeout and the fleets; a rule sends it the executions that end
        TIMED_OUT, ABORTED or FAILED (runtime/cleanup.py)."""
        # The state machine's ARN by its name: it invokes this function (HoldLock), so a
        # reference would make each depend on the other.
        machine = Stack.of(self).format_arn(
            service="states",
            resource="stateMachine",
            resource_name=release_state_machine(config.name),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        settings = CleanupSettings(
            environment=config.name,
            service_name="phoenix-release-cleanup",
            table_name=self.ledger.table.table_name,
            state_machine_arn=machine,
            execution_timeout_seconds=int(lifetime),
        )
        for variable, value in settings.to_environment().items():
            self.cleanup.add_environment(variable, value)
        grant_registry_reads(self.cleanup, config.name)
        self.execution_ended = events.Rule(
            self,
            "ExecutionEnded",
            description=f"phoenix {config.name}: a release execution that ended unhandled",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[STATUS_CHANGE],
                detail={
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                    "status": list(UNHANDLED),
                },
            ),
            targets=[lambda_target(self.cleanup)],
        )

    def _scoped(
        self, function: PhoenixFunction, action: str, config: EnvironmentConfig
    ) -> iam.PolicyStatement:
        """The statement for a call outside the ledger and the fleets."""
        if action == "events:PutEvents":
            return put_events_on_default_bus(self)
        if action == "lambda:InvokeFunction":
            # The environment's pre-traffic hooks, by their tag (the function's owner opts
            # in): one statement, whatever the number of fleets and hooks.
            functions = Stack.of(self).format_arn(
                service="lambda",
                resource="function",
                resource_name="*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            acknowledge_wildcard(
                function.execution_role,
                nag_arn(Stack.of(self), "lambda", "function:*"),
                f"Only functions tagged {HOOK_TAG}={config.name}: the pre-traffic hooks its "
                "fleets name, known only when a release reads the fleet's spec.",
            )
            return iam.PolicyStatement(
                actions=[action],
                resources=[functions],
                conditions={"StringEquals": {f"aws:ResourceTag/{HOOK_TAG}": config.name}},
            )
        if action in ("ec2:CreateTags", "ec2:DeleteTags"):
            # Marking AMIs rollback targets and unmarking them (the image lifecycle keeps
            # exactly those): images only, and only that tag. ForAllValues alone also
            # matches a request without tag keys, which for DeleteTags removes every tag
            # of the image: the Null condition requires the keys to be named.
            images = nag_arn(Stack.of(self), "ec2", "image/*", with_account=False)
            acknowledge_wildcard(
                function.execution_role,
                images,
                "Any AMI a fleet ran may become a rollback target; the statements "
                "allow only the phoenix:rollback-target tag key.",
            )
            return iam.PolicyStatement(
                actions=[action],
                resources=[
                    Stack.of(self).format_arn(
                        service="ec2", account="", resource="image", resource_name="*"
                    )
                ],
                conditions={
                    "ForAllValues:StringEquals": {"aws:TagKeys": [ROLLBACK_TARGET_TAG]},
                    "Null": {"aws:TagKeys": "false"},
                },
            )
        if action == "imagebuilder:GetImage":
            # the environment's own images, where they are baked (the preflight's scan gate)
            acknowledge_wildcard(
                function.execution_role,
                nag_arn(
                    Stack.of(self), "imagebuilder", f"image/phoenix-{config.name}-*",
                    region=self._image_region,
                ),
                "Any image of the environment's pipelines (name, version and build) may "
                "be released; the preflight reads its scan.",
            )  # fmt: skip
            return iam.PolicyStatement(
                actions=[action],
                resources=[
                    Stack.of(self).format_arn(
                        service="imagebuilder",
                        region=self._image_region or Stack.of(self).region,
                        resource="image",
                        resource_name=f"phoenix-{config.name}-*",
                    )
                ],
            )
        if action == "imagebuilder:ListImageScanFindings":
            acknowledge_wildcard(
                function.execution_role,
                "*",
                "imagebuilder:ListImageScanFindings supports no resource-level permissions "
                "(Service Authorization Reference); the filter names the image.",
            )
            return iam.PolicyStatement(actions=[action], resources=["*"])
        raise ValueError(f"no scoping for {action}")
