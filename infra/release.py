"""ReleaseOrchestrator: what starts a release when an image is baked.

The release trigger function receives `EC2 Image Builder Image State Change` events for
this environment's pipelines and `phoenix` `Release Requested` events, and starts the
release state machine once per subscribed fleet. The state machine's definition is a
skeleton (it records its input and succeeds); the release steps (DESIGN.md section 4)
and the ledger replace it in the release work.
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, Aws, RemovalPolicy, Stack, Token, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.common.names import image_name, release_state_machine
from functions.release_trigger.handler import Settings as TriggerSettings
from infra.config import EnvironmentConfig
from infra.functions import PhoenixFunction
from infra.observability import log_retention

IMAGE_STATE_CHANGE = "EC2 Image Builder Image State Change"


class ReleaseOrchestrator(Construct):
    """The release state machine and the rule that starts it for this environment's images.

    The rule matches `EC2 Image Builder Image State Change` events with status AVAILABLE
    for images named `phoenix-<env>-<pipeline>` in this account and region. Executions
    are logged (ALL, with data) to a log group encrypted with `key` and traced with X-Ray.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, id)
        environment = config.name
        pipelines = [p.name for p in config.image_pipelines]
        log_retention_days = config.functions.log_retention_days
        log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            encryption_key=key,
            retention=log_retention(log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        skeleton = sfn.Pass(self, "ReleaseRequested", comment="The release steps come here.")
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=release_state_machine(environment),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(
                skeleton.next(sfn.Succeed(self, "Released"))
            ),
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        Validations.of(self.state_machine).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="Step Functions log delivery (logs:*LogDelivery*, DescribeLogGroups) and "
                "X-Ray (PutTraceSegments) support no resource-level permissions.",
            )
        )
        self.trigger = self._trigger(config, key)
        images = [
            {
                "prefix": f"arn:{Aws.PARTITION}:imagebuilder:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                f"image/{image_name(environment, pipeline)}/"
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
            targets=[targets.LambdaFunction(self.trigger)],
        )
        self.release_requested = events.Rule(
            self,
            "ManualRelease",
            description=f"phoenix {environment}: a release asked for by hand",
            event_pattern=events.EventPattern(
                source=["phoenix"], detail_type=["Release Requested"]
            ),
            targets=[targets.LambdaFunction(self.trigger)],
        )
        # CDK types `resources` as exact strings; a prefix match needs the raw pattern.
        rule = self.image_available.node.default_child
        assert isinstance(rule, events.CfnRule)
        rule.add_property_override("EventPattern.resources", images)

    def _trigger(self, config: EnvironmentConfig, key: kms.IKey) -> PhoenixFunction:
        subscriptions = {
            image_name(config.name, pipeline.name): [
                fleet.name for fleet in config.fleets if fleet.image_pipeline == pipeline.name
            ]
            for pipeline in config.image_pipelines
        }
        trigger = PhoenixFunction(
            self,
            "Trigger",
            name="release_trigger",
            description=f"phoenix {config.name}: starts a release per subscribed fleet",
            settings=TriggerSettings(
                environment=config.name,
                service_name="phoenix-release-trigger",
                state_machine_arn=self.state_machine.state_machine_arn,
                subscriptions=json.dumps(subscriptions),
            ),
            config=config.functions,
            key=key,
        )
        self.state_machine.grant_start_execution(trigger)
        stack = Stack.of(self)
        images = [
            stack.format_arn(service="imagebuilder", resource="image", resource_name=f"{name}/*")
            for name in subscriptions
        ]
        trigger.add_to_role_policy(
            iam.PolicyStatement(actions=["imagebuilder:GetImage"], resources=images)
        )
        shown = {
            "region": stack.region if not Token.is_unresolved(stack.region) else "<AWS::Region>",
            "account": "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account,
        }
        for name in subscriptions:
            arn = (
                f"arn:<AWS::Partition>:imagebuilder:{shown['region']}:{shown['account']}:"
                f"image/{name}/*"
            )
            Validations.of(trigger.role).acknowledge(  # type: ignore[arg-type]
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{arn}]",
                    reason="Every build version of this environment's pipeline image; "
                    "versions and build numbers are only known when baked.",
                )
            )
        return trigger
