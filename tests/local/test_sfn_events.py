"""Execution status changes on the default event bus, as Step Functions sends them
(local/sfn_events.py cites the AWS documentation the shape follows)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import eventbridge, install_extensions
from tests.local.eventbus import EventQueue

REGION = "us-east-1"
# The keys of AWS's sample `Step Functions Execution Status Change` event and its detail.
ENVELOPE = {"version", "id", "detail-type", "source", "account", "time", "region", "resources"}
DETAIL = {
    "executionArn",
    "stateMachineArn",
    "name",
    "status",
    "startDate",
    "stopDate",
    "input",
    "inputDetails",
    "output",
    "outputDetails",
    "error",
    "cause",
}
ENDED = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}


@pytest.fixture
def aws() -> Iterator[list[dict[str, Any]]]:
    """The events a rule for execution status changes matched, as it matched them (read
    where the rule matches: an execution outliving its timeout moves the simulated clock
    far enough for a queue's messages to expire)."""
    with mock_aws():
        install_extensions(None)
        EventQueue.for_pattern(
            "executions",
            {"source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"]},
        )
        matched: list[dict[str, Any]] = []
        stop = eventbridge.tap("executions", matched.append)
        yield matched
        stop()


def _machine(name: str, states: dict[str, Any], **more: Any) -> str:
    definition = {"StartAt": next(iter(states)), "States": states, **more}
    return str(
        boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name=name,
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
    )


def _ended(execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = stepfunctions.get_execution_history(executionArn=execution_arn)["events"]
        if ENDED & {e["type"] for e in events}:
            break
        time.sleep(0.05)
    return dict(stepfunctions.describe_execution(executionArn=execution_arn))


def _start(machine: str, name: str) -> str:
    started = boto3.client("stepfunctions", region_name=REGION).start_execution(
        stateMachineArn=machine, name=name, input=json.dumps({"fleet": "web", "n": 1})
    )
    return str(started["executionArn"])


def test_every_end_of_an_execution_is_published_once_in_aws_s_shape(
    aws: list[dict[str, Any]],
) -> None:
    # Given four executions: one succeeds, one reaches a Fail state, one is stopped while
    # it waits, one outlives its state machine's TimeoutSeconds
    succeeds = _machine("succeeds", {"Done": {"Type": "Pass", "Result": {"ok": 1}, "End": True}})
    fails = _machine(
        "fails", {"Broken": {"Type": "Fail", "Error": "ReleaseNotDone", "Cause": "see the ledger"}}
    )
    waits = {"Bake": {"Type": "Wait", "Seconds": 365 * 86400, "End": True}}
    stopped = _machine("stopped", waits)
    times_out = _machine("times-out", waits, TimeoutSeconds=1)

    # When they run (the third stopped as a person would), to their end
    arns = {
        "SUCCEEDED": _start(succeeds, "a"),
        "FAILED": _start(fails, "b"),
        "ABORTED": _start(stopped, "c"),
        "TIMED_OUT": _start(times_out, "d"),
    }
    boto3.client("stepfunctions", region_name=REGION).stop_execution(
        executionArn=arns["ABORTED"], error="Stopped", cause="by alice"
    )
    described = {status: _ended(arn) for status, arn in arns.items()}
    assert {s: d["status"] for s, d in described.items()} == {s: s for s in arns}
    received = list(aws)

    # Then each sent exactly one event, with AWS's fields and values as DescribeExecution
    # gives them (dates in epoch milliseconds)
    by_name = {event["detail"]["name"]: event for event in received}
    assert len(received) == 4
    assert sorted(by_name) == ["a", "b", "c", "d"]
    for status, arn in arns.items():
        event = by_name[arn.rsplit(":", 1)[1]]
        detail = event["detail"]
        assert set(event) >= ENVELOPE
        assert set(detail) == DETAIL
        assert (event["source"], event["resources"]) == ("aws.states", [arn])
        assert (detail["executionArn"], detail["status"]) == (arn, status)
        assert (
            detail["stateMachineArn"]
            == arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0]
        )
        assert json.loads(detail["input"]) == {"fleet": "web", "n": 1}
        assert detail["inputDetails"] == {"included": True}
        assert detail["startDate"] == int(described[status]["startDate"].timestamp() * 1000)
        assert detail["stopDate"] >= detail["startDate"]
        if status != "TIMED_OUT":  # moto's DescribeExecution omits a timed-out stopDate
            assert detail["stopDate"] == int(described[status]["stopDate"].timestamp() * 1000)
    assert json.loads(by_name["a"]["detail"]["output"]) == {"ok": 1}
    assert by_name["a"]["detail"]["outputDetails"] == {"included": True}
    for name in "bcd":
        assert (by_name[name]["detail"]["output"], by_name[name]["detail"]["outputDetails"]) == (
            None,
            None,
        )
    errors = {n: (e["detail"]["error"], e["detail"]["cause"]) for n, e in by_name.items()}
    assert errors == {
        "a": (None, None),
        "b": ("ReleaseNotDone", "see the ledger"),
        "c": (None, None),  # moto's StopExecution keeps neither
        "d": (None, None),
    }


def test_stopping_an_execution_that_has_ended_sends_nothing_more(
    aws: list[dict[str, Any]],
) -> None:
    machine = _machine("done", {"Done": {"Type": "Succeed"}})
    arn = _start(machine, "once")
    assert _ended(arn)["status"] == "SUCCEEDED"

    boto3.client("stepfunctions", region_name=REGION).stop_execution(executionArn=arn)

    assert [e["detail"]["status"] for e in aws] == ["SUCCEEDED"]
