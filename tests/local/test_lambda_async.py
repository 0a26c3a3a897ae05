"""Asynchronous invocations keep Lambda's error handling in the embedded AWS: a function
error is retried twice, a minute and then two minutes later, with the same request id,
and then the event is discarded (local/lambda_dispatch.py cites the Lambda developer
guide)."""

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
