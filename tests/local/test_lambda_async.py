"""Asynchronous invocations keep Lambda's error handling in the embedded AWS: a function
error is retried twice, a minute and then two minutes later, with the same request id,
and then its record goes to the function's on-failure queue, or the event is discarded
(local/lambda_dispatch.py and local/destinations.py cite the Lambda developer guide)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from local import clock, lambda_dispatch
from tests.local.clock_world import REGION, _function, probe


def _invoke_async(payload: dict[str, Any]) -> None:
    response = boto3.client("lambda", region_name=REGION).invoke(
        FunctionName="phoenix-probe", InvocationType="Event", Payload=json.dumps(payload).encode()
    )
    assert response["StatusCode"] == 202


def test_an_asynchronous_error_is_retried_a_minute_then_two_minutes_later(
    clock_aws: None,
) -> None:
    _function()
    # When an event's first two attempts fail
    _invoke_async({"fail_first": 2})
    assert len(probe.calls) == 1
    # Then the second attempt comes a minute later, the third two minutes after that
    clock.advance(60)
    assert len(probe.calls) == 2
    clock.advance(60)
    assert len(probe.calls) == 2
    clock.advance(60)
    assert len(probe.calls) == 3
    started = [call["elapsed"] for call in probe.calls]
    assert started[1] - started[0] == 60
    assert started[2] - started[1] == 120
    # and the third succeeded: nothing was discarded, nothing more runs
    clock.advance(600)
    assert len(probe.calls) == 3
    assert lambda_dispatch.lost == []


def test_after_three_failed_attempts_the_event_is_discarded(clock_aws: None) -> None:
    _function()
    lambda_dispatch.lost.clear()
    _invoke_async({"fail_first": 5})
    clock.advance(600)
    assert len(probe.calls) == 3  # the first attempt and two retries, no more
    assert [name for name, _ in lambda_dispatch.lost] == ["phoenix-probe"]


def test_a_synchronous_error_is_the_caller_s_to_retry(clock_aws: None) -> None:
    _function()
    response = boto3.client("lambda", region_name=REGION).invoke(
        FunctionName="phoenix-probe", Payload=json.dumps({"fail_first": 1}).encode()
    )
    assert response["FunctionError"] == "Unhandled"
    clock.advance(600)
    assert len(probe.calls) == 1


def _on_failure_queue(*, may_send: bool, retries: int = 2) -> str:
    """An encrypted queue as the probe's on-failure destination; `may_send`: its role
    is granted what sending there needs."""
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]["Arn"]
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="undelivered", Attributes={"KmsMasterKeyId": key})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    boto3.client("lambda", region_name=REGION).put_function_event_invoke_config(
        FunctionName="phoenix-probe",
        MaximumRetryAttempts=retries,
        DestinationConfig={"OnFailure": {"Destination": arn["QueueArn"]}},
    )
    if may_send:
        statements = [
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn["QueueArn"]},
            {"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": key},
        ]
        boto3.client("iam", region_name=REGION).put_role_policy(
            RoleName="probe",
            PolicyName="destination",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    return str(url)


def _records(url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=url, MaxNumberOfMessages=10
    )
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_after_the_last_attempt_the_record_goes_to_the_on_failure_queue(
    clock_aws: None,
) -> None:
    _function()
    url = _on_failure_queue(may_send=True)
    lambda_dispatch.lost.clear()

    _invoke_async({"fail_first": 5})
    clock.advance(600)

    (record,) = _records(url)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(":function:phoenix-probe:$LATEST")
    assert record["requestPayload"] == {"fail_first": 5}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert "errorMessage" in record["responsePayload"]
    assert lambda_dispatch.lost == []


def test_a_function_without_retries_sends_its_record_after_one_attempt(clock_aws: None) -> None:
    _function()
    url = _on_failure_queue(may_send=True, retries=0)
    _invoke_async({"fail_first": 1})
    (record,) = _records(url)
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert len(probe.calls) == 1


def test_a_role_that_may_not_send_to_the_queue_loses_the_record(clock_aws: None) -> None:
    _function()
    url = _on_failure_queue(may_send=False)
    lambda_dispatch.lost.clear()

    _invoke_async({"fail_first": 5})
    clock.advance(600)

    assert _records(url) == []
    assert [name for name, _ in lambda_dispatch.lost] == ["phoenix-probe"]
