"""ReleaseOrchestrator: what starts a release when an image is baked (skeleton).

Today this is the release's entry point and nothing more: the state machine that will
run a release (DESIGN.md section 4) exists with its logging and tracing, and the rule
that starts it when one of this environment's image pipelines publishes an AVAILABLE
image. Its definition is a skeleton (it records the event and succeeds); the release
steps, the ledger and the release trigger function replace it in the release work.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, RemovalPolicy, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.common.names import image_name, release_state_machine
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
        environment: str,
        pipelines: list[str],
        key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id)
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
            targets=[targets.SfnStateMachine(self.state_machine)],
        )
        # CDK types `resources` as exact strings; a prefix match needs the raw pattern.
        rule = self.image_available.node.default_child
        assert isinstance(rule, events.CfnRule)
        rule.add_property_override("EventPattern.resources", images)
