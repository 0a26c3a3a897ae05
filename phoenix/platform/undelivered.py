"""No event lost without a trace: what EventBridge could not deliver, and what a function
invoked asynchronously failed on three times, lands in one encrypted queue per region
stack, whose depth raises an alarm (docs/reliability.md).

- **Rule targets** (`lambda_target`, `bus_target`, `topic_target`): EventBridge retries a
  failed delivery with exponential back-off for up to RETRY_ATTEMPTS attempts within
  MAX_EVENT_AGE, then sends the event to the queue ("Event retry policy and using
  dead-letter queues", EventBridge user guide). EventBridge must then use the queue's
  key, as it must to publish to the encrypted topic: the key policy lets it (for this
  account's rules only).
- **Asynchronous invocations** (what EventBridge starts): Lambda runs a failing event
  twice more, then sends a record of the invocation (request, response, condition) to
  the function's on-failure destination, with the function's execution role ("Capturing
  records of Lambda asynchronous invocations", Lambda developer guide). Each function is
  granted exactly that: SendMessage on the queue and the key's GenerateDataKey and
  Decrypt (what a producer of an SSE-KMS queue needs, SQS developer guide, "Key
  management").
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from phoenix.platform.nag import skip_checkov

ID = "Undelivered"
# EventBridge's retry policy for each target (its defaults are 185 attempts over 24 h;
# an event of phoenix's older than a day is of no use, and the queue keeps it 14 days).
RETRY_ATTEMPTS = 20
MAX_EVENT_AGE = Duration.hours(24)
# Lambda's retries of a failed asynchronous invocation (its default and maximum).
ASYNC_RETRIES = 2
# Why checkov's dead-letter queue check (CKV_AWS_116) does not apply to such a function.
ON_FAILURE_DESTINATION = (
    "No dead-letter queue: the function's asynchronous invocations (by EventBridge rules) "
    "send their last failure to its on-failure destination instead, the stack's queue of "
    "undelivered events, with the request, the response and the condition of the "
    "failure; that queue's first message raises an alarm."
)


class Undelivered(Construct):
    """The region stack's queue of undelivered events and its depth alarm."""

    def __init__(
        self, scope: Construct, id: str, *, environment: str, key: kms.IKey, topic: sns.ITopic
    ) -> None:
        super().__init__(scope, id)
        self.key = key
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeUsesTheKey",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        Validations.of(self.queue).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-SQS3",
                reason="This queue is itself the dead-letter queue: of the EventBridge rule "
                "targets and of Lambda's failed asynchronous invocations (cdk-nag counts "
                "only SQS redrive policies).",
            )
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "Depth",
            # Not `phoenix-<env>-...`: the names a fleet's alarms start with, which roll
            # that fleet back (rollback/alarm_rollback.py).
            alarm_name=f"phoenix-undelivered-{environment}",
            alarm_description=f"phoenix {environment}: an event was not delivered or a "
            "function failed on it three times; it waits in the queue",
            metric=self.queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(actions.SnsAction(topic))

    @staticmethod
    def of(scope: IConstruct) -> Undelivered:
        """The queue of `scope`'s stack (Observability makes it, at the stack's top)."""
        found = Stack.of(scope).node.try_find_child(ID)
        if not isinstance(found, Undelivered):
            raise LookupError(f"no {ID} construct in stack {Stack.of(scope).stack_name}")
        return found

    def target_options(self) -> dict[str, Any]:
        return {
            "dead_letter_queue": self.queue,
            "retry_attempts": RETRY_ATTEMPTS,
            "max_event_age": MAX_EVENT_AGE,
        }

    def asynchronous(self, function: lambda_.Function) -> None:
        """`function` is invoked asynchronously: its last failure goes to the queue."""
        if function.node.try_find_child("EventInvokeConfig") is not None:
            return  # configured already (CDK's child of configure_async_invoke)
        function.configure_async_invoke(
            on_failure=_QueueDestination(self.queue),
            retry_attempts=ASYNC_RETRIES,
            max_event_age=Duration.hours(6),
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn]
            )
        )
        skip_checkov(function, "CKV_AWS_116", ON_FAILURE_DESTINATION)


@jsii.implements(lambda_.IDestination)
class _QueueDestination:
    """An on-failure destination that grants nothing itself (CDK's SqsDestination grants
    GetQueueAttributes, GetQueueUrl and the key's Encrypt and ReEncrypt too): the grant
    is Undelivered.asynchronous's."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self,
        _scope: Construct,
        _fn: lambda_.IFunction,
        *,
        type: lambda_.DestinationType,  # noqa: ARG002 - the interface names it
    ) -> lambda_.DestinationConfig:
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


def lambda_target(function: lambda_.Function) -> targets.LambdaFunction:
    """A rule target invoking `function` (asynchronously), with the stack's queue for what
    EventBridge cannot deliver and for the function's last failure."""
    undelivered = Undelivered.of(function)
    undelivered.asynchronous(function)
    return targets.LambdaFunction(function, **undelivered.target_options())


def bus_target(scope: IConstruct, bus: events.IEventBus) -> targets.EventBus:
    return targets.EventBus(bus, dead_letter_queue=Undelivered.of(scope).queue)


def topic_target(
    scope: IConstruct, topic: sns.ITopic, message: events.RuleTargetInput
) -> targets.SnsTopic:
    return targets.SnsTopic(topic, message=message, **Undelivered.of(scope).target_options())
