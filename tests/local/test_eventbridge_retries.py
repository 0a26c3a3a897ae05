"""A delivery EventBridge could not make is retried by the target's retry policy, then put
in its dead-letter queue with the documented attributes, or dropped when the queue does
not take it (local/eventbridge_retries.py)."""

from __future__ import annotations

import io
import json
import sys
import types
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from local import clock, eventbridge, eventbridge_retries
from local.cloudformation import aws_client
from local.embedded import EmbeddedAws
from local.faults import failing
from tests.local.clock_world import HANDLER, HANDLER_MODULE, _probe_handler, probe

RULE = "retried"
TRUST = {
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
}


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    module = types.ModuleType(HANDLER_MODULE)
    module.lambda_handler = _probe_handler  # type: ignore[attr-defined]
    sys.modules[HANDLER_MODULE] = module
    with EmbeddedAws() as embedded:
        role = aws_client("iam", embedded.region).create_role(
            RoleName="probe", AssumeRolePolicyDocument=json.dumps(TRUST)
        )
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr(HANDLER_MODULE.replace(".", "/") + ".py", "")
        aws_client("lambda", embedded.region).create_function(
            FunctionName="phoenix-probe",
            Runtime="python3.14",
            Role=role["Role"]["Arn"],
            Handler=HANDLER,
            Code={"ZipFile": archive.getvalue()},
        )
        yield embedded
    del sys.modules[HANDLER_MODULE]


def _world(aws: EmbeddedAws, *, allow_rule: bool = True, function: str = "phoenix-probe") -> str:
    """A rule sending `phoenix` test events to `function` with two retries and a
    dead-letter queue (whose policy lets the rule send, or not); the queue's URL."""
    sqs, events = aws_client("sqs", aws.region), aws_client("events", aws.region)
    name = f"undelivered-{len(probe.calls)}-{allow_rule}-{function}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = events.put_rule(Name=RULE, EventPattern=json.dumps({"source": ["retry-test"]}))
    source = rule["RuleArn"] if allow_rule else rule["RuleArn"] + "-other"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue,
                "Condition": {"ArnEquals": {"aws:SourceArn": source}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    arn = f"arn:aws:lambda:{aws.region}:123456789012:function:{function}"
    events.put_targets(
        Rule=RULE,
        Targets=[
            {
                "Id": "probe",
                "Arn": arn,
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": queue},
            }
        ],
    )
    return str(url)


def _put(aws: EmbeddedAws) -> None:
    aws_client("events", aws.region).put_events(
        Entries=[{"Source": "retry-test", "DetailType": "Test", "Detail": "{}"}]
    )
    eventbridge.drain()


def _dead_letters(aws: EmbeddedAws, url: str) -> list[dict[str, Any]]:
    messages = aws_client("sqs", aws.region).receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return [
        {
            "event": json.loads(m["Body"]),
            **{k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()},
        }
        for m in messages.get("Messages", [])
    ]


def test_a_throttled_delivery_is_delivered_on_a_retry(aws: EmbeddedAws) -> None:
    url = _world(aws)
    before = len(probe.calls)
    with failing("lambda", "Invoke", "TooManyRequestsException", invoking="phoenix-probe"):
        _put(aws)
        assert len(probe.calls) == before
        clock.advance(60)
        eventbridge.drain()
    assert len(probe.calls) == before + 1
    assert _dead_letters(aws, url) == []


def test_a_delivery_throttled_past_its_retries_goes_to_the_dead_letter_queue(
    aws: EmbeddedAws,
) -> None:
    url = _world(aws)
    before = len(probe.calls)
    with failing("lambda", "Invoke", "TooManyRequestsException", 9, invoking="phoenix-probe"):
        _put(aws)
        clock.advance(60)  # the first retry, a minute later
        eventbridge.drain()
        assert _dead_letters(aws, url) == []
        clock.advance(120)  # the second, two minutes after that: the last
        eventbridge.drain()
    assert len(probe.calls) == before
    (letter,) = _dead_letters(aws, url)
    assert letter["event"]["source"] == "retry-test"
    assert letter["ERROR_CODE"] == "TooManyRequestsException"
    assert letter["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert letter["RETRY_ATTEMPTS"] == "2"
    assert letter["RULE_ARN"].endswith(f":rule/{RULE}")
    assert letter["TARGET_ARN"].endswith(":function:phoenix-probe")


def test_a_target_that_does_not_exist_goes_to_the_queue_without_retries(
    aws: EmbeddedAws,
) -> None:
    url = _world(aws, function="phoenix-gone")
    _put(aws)
    (letter,) = _dead_letters(aws, url)
    assert letter["ERROR_CODE"] == "ResourceNotFoundException"
    assert letter["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in letter


def test_a_queue_that_does_not_let_the_rule_send_loses_the_event(aws: EmbeddedAws) -> None:
    url = _world(aws, allow_rule=False, function="phoenix-gone")
    dropped = len(eventbridge_retries.dropped)
    _put(aws)
    assert _dead_letters(aws, url) == []
    assert len(eventbridge_retries.dropped) == dropped + 1
