"""Lambda's on-failure destination in the embedded AWS: where the record of an
asynchronous invocation that failed its last attempt goes (local.lambda_dispatch).

As the Lambda developer guide describes ("Capturing records of Lambda asynchronous
invocations"): the function's EventInvokeConfig names the destination, Lambda sends the
record with the function's execution role, and an SQS destination gets the record as a
message's body. The role must allow `sqs:SendMessage` on the queue and, when the queue
is encrypted with a customer managed key, what a producer needs of that key
(`kms:GenerateDataKey`; SQS developer guide, "Key management"): evaluated here on the
role's policies as deployed (local.iam_policy). A record that cannot be sent is lost,
and logged, as Lambda drops it. Only SQS destinations are emulated.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.sqs.models import sqs_backends

from local.cloudformation import aws_client
from local.iam import role_policies
from local.iam_policy import Decision, Request, evaluate

logger = logging.getLogger("phoenix.local.lambda")


def on_failure(function: LambdaFunction) -> str | None:
    """The ARN of the function's on-failure destination, if it has one."""
    for config in function.event_invoke_config:
        destination = config.config.get("DestinationConfig", {}).get("OnFailure", {})
        if destination.get("Destination"):
            return str(destination["Destination"])
    return None


def send_on_failure(function: LambdaFunction, record: dict[str, Any]) -> bool:
    """Send `record` to the function's on-failure queue; False when it has none or its
    role may not send there."""
    arn = on_failure(function)
    if arn is None:
        return False
    if ":sqs:" not in arn:
        logger.warning("on-failure destination %s is not an SQS queue (not emulated)", arn)
        return False
    _, _, _, region, account, name = arn.split(":", 5)
    queue = sqs_backends[account][region].get_queue(name)
    needed = [Request("sqs:SendMessage", arn)]
    key = getattr(queue, "kms_master_key_id", None)  # set from its attributes by moto
    if key and not str(key).startswith("alias/aws/"):
        needed.append(Request("kms:GenerateDataKey", str(key)))
    policies = role_policies(str(function.role))
    for request in needed:
        if evaluate(policies, request) is not Decision.ALLOWED:
            logger.warning(
                "the record of %s was not sent: its role may not %s on %s",
                function.function_name,
                request.action,
                request.resource,
            )
            return False
    sqs = aws_client("sqs", region)
    sqs.send_message(
        QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"], MessageBody=json.dumps(record)
    )
    return True
