"""What EventBridge does with a delivery to a rule's target that failed.

As the EventBridge user guide describes it ("How EventBridge retries delivering events";
"Using dead-letter queues to process undelivered events"):
- a retriable error (the target throttled, unavailable, a 5xx) is retried with
  exponential back-off, until the target's RetryPolicy runs out: MaximumRetryAttempts
  (default 185) or MaximumEventAgeInSeconds (default 24 hours);
- an error from missing permissions or a target that no longer exists is not retried;
- then the event goes to the target's dead-letter queue (DeadLetterConfig), an SQS queue
  whose policy must let EventBridge (`events.amazonaws.com`) send from the rule
  (`aws:SourceArn`), with attributes RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE,
  EXHAUSTED_RETRY_CONDITION and RETRY_ATTEMPTS; without one, or when the queue refuses
  it, the event is dropped (here: recorded in `dropped`).
AWS does not document its back-off's steps; here the first retry comes a simulated
minute later (the clock's step), doubling up to an hour. The queue's key policy is not
evaluated (phoenix's allows EventBridge, tests/platform/test_undelivered.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from moto.sqs.models import sqs_backends
from moto.utilities.arns import parse_arn

from local import clock
from local.cloudformation import aws_client
from local.iam_policy import Decision, Request, evaluate, statements_of

logger = logging.getLogger("phoenix.local.eventbridge")
DEFAULT_ATTEMPTS = 185
DEFAULT_AGE = 24 * 3600.0
FIRST_RETRY = 60.0
LONGEST_WAIT = 3600.0
# Errors EventBridge sends to the dead-letter queue without retrying.
_NOT_RETRIED = (
    "AccessDenied",
    "AccessDeniedException",
    "ResourceNotFoundException",
    "NotFound",
    "NOT_DELIVERED",
)
# What was neither delivered nor put in a dead-letter queue: (rule ARN, event).
dropped: list[tuple[str, dict[str, Any]]] = []


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one target of one rule."""

    target: dict[str, Any]
    event: dict[str, Any]
    region: str
    rule_arn: str
    retries: int = 0
    since: float = field(default_factory=lambda: clock.elapsed())  # noqa: PLW0108 - clock imports this module: read at call time


def failed(delivery: Delivery, code: str, message: str, again: Callable[[Delivery], None]) -> None:
    """The delivery failed with `code`: retry it later through `again`, or give it up."""
    policy = delivery.target.get("RetryPolicy", {})
    attempts = int(policy.get("MaximumRetryAttempts", DEFAULT_ATTEMPTS))
    age = float(policy.get("MaximumEventAgeInSeconds", DEFAULT_AGE))
    wait = min(FIRST_RETRY * 2**delivery.retries, LONGEST_WAIT)
    if code.startswith(_NOT_RETRIED):
        _give_up(delivery, code, message, None)
    elif delivery.retries >= attempts:
        _give_up(delivery, code, message, "MaximumRetryAttempts")
    elif clock.elapsed() + wait - delivery.since > age:
        _give_up(delivery, code, message, "MaximumEventAgeInSeconds")
    else:
        later = replace(delivery, retries=delivery.retries + 1)
        clock.at(wait, lambda: again(later))


def _give_up(delivery: Delivery, code: str, message: str, exhausted: str | None) -> None:
    queue = delivery.target.get("DeadLetterConfig", {}).get("Arn")
    if not queue or not _may_send(queue, delivery.rule_arn):
        dropped.append((delivery.rule_arn, delivery.event))
        logger.warning(
            "event %s dropped: %s (%s), no dead-letter queue that takes it",
            delivery.event.get("id"),
            code,
            message,
        )
        return
    attributes = {
        "RULE_ARN": delivery.rule_arn,
        "TARGET_ARN": delivery.target["Arn"],
        "ERROR_CODE": code,
        "ERROR_MESSAGE": message[:256] or code,
        "RETRY_ATTEMPTS": str(delivery.retries),
    }
    if exhausted:
        attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
    arn = parse_arn(queue)
    sqs = aws_client("sqs", arn.region)
    url = sqs.get_queue_url(QueueName=arn.resource_id, QueueOwnerAWSAccountId=arn.account)
    sqs.send_message(
        QueueUrl=url["QueueUrl"],
        MessageBody=json.dumps(delivery.event, default=str),
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        },
    )


def _may_send(queue_arn: str, rule_arn: str) -> bool:
    """Whether the queue's policy lets EventBridge send to it from the rule."""
    arn = parse_arn(queue_arn)
    queue = sqs_backends[arn.account][arn.region].queues.get(arn.resource_id)
    if queue is None or not queue.policy:
        return False
    to_eventbridge = [
        {"Version": "2012-10-17", "Statement": [statement]}
        for statement in statements_of(queue.policy)
        if _names_eventbridge(statement.get("Principal"))
    ]
    request = Request("sqs:SendMessage", queue_arn, {"aws:SourceArn": [rule_arn]})
    return evaluate(to_eventbridge, request) is Decision.ALLOWED


def _names_eventbridge(principal: Any) -> bool:
    if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
        return True
    if not isinstance(principal, dict):
        return False
    service = principal.get("Service", [])
    return "events.amazonaws.com" in ([service] if isinstance(service, str) else service)
