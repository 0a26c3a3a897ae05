"""StopExecution ends a task's token wait at once and the execution is ABORTED (see
local/clock.py for the AWS documentation it follows)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from local import clock
from tests.local.clock_world import (
    REGION,
    _ended,
    _function,
    _machine,
    probe,
)

# --- StopExecution while a task waits for its token -----------------------------------


def _token_machine(function_arn: str) -> str:
    def call(payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn, "Payload": payload},
            "End": True,
        }

    return _machine(
        {
            "StartAt": "Wait for token",
            "States": {
                "Wait for token": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {
                        "FunctionName": function_arn,
                        "Payload": {"token.$": "$$.Task.Token"},
                    },
                    "TimeoutSeconds": 86400,
                    "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                    "Next": "After",
                },
                "After": call({"after": True}),
                "Caught": call({"caught": True}),
            },
        }
    )


def test_stop_execution_ends_a_token_wait_at_once_and_the_execution_is_aborted(
    clock_aws: None,
) -> None:
    # Given an execution whose task waits for its token, a day at most, while the world
    # moves a minute at a time; three minutes in, something stops it (as the rollback
    # function stops a release from an alarm's event, delivered between two minutes)
    machine = _token_machine(_function())
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    stop: dict[str, Any] = {}

    def stop_three_minutes_in() -> None:
        if not probe.calls or stop:
            return
        if clock.elapsed() < probe.calls[0]["elapsed"] + 3 * 60:
            return
        stop["elapsed"] = clock.elapsed()
        try:
            (running,) = stepfunctions.list_executions(
                stateMachineArn=machine, statusFilter="RUNNING"
            )["executions"]
            arn = running["executionArn"]
            stop["answer"] = stepfunctions.stop_execution(
                executionArn=arn, error="RolledBack", cause="an alarm"
            )
            stop["status"] = stepfunctions.describe_execution(executionArn=arn)["status"]
        except Exception as error:  # reported by the assertions below
            stop["error"] = repr(error)

    unwatch = clock.watch(stop_three_minutes_in)
    try:
        # When it runs
        execution_arn = stepfunctions.start_execution(stateMachineArn=machine)["executionArn"]
        execution = _ended(execution_arn)
    finally:
        unwatch()

    # Then the execution was ABORTED as soon as StopExecution returned, with its stopDate
    assert "error" not in stop, stop
    assert stop["status"] == "ABORTED"
    assert stop["answer"]["stopDate"]
    # and it stays ABORTED now that its worker has ended: not FAILED, not SUCCEEDED
    assert execution["status"] == "ABORTED"
    assert execution["stopDate"] == stop["answer"]["stopDate"]
    # the wait ended at once: no simulated minute passed after the stop
    assert clock.elapsed() == stop["elapsed"]
    # and nothing after the wait ran: no Retry, no Catch, no next state
    assert [c["event"] for c in probe.calls] == [{"token": probe.calls[0]["event"]["token"]}]
    kinds = [e["type"] for e in execution["history"]]
    assert kinds[-1] == "ExecutionAborted"
    assert not {"TaskTimedOut", "TaskFailed", "ExecutionFailed", "ExecutionSucceeded"} & set(kinds)
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in execution["history"]
        if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Wait for token"]


# --- SendTaskFailure ----------------------------------------------------------------------


def test_send_task_failure_hands_its_error_and_cause_to_the_catch(clock_aws: None) -> None:
    # Given an execution whose task waits for its token; a minute in, a person's
    # rejection fails the task with an error and a cause
    machine = _token_machine(_function())
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    sent: dict[str, Any] = {}

    def reject_a_minute_in() -> None:
        if not probe.calls or sent:
            return
        sent["answer"] = stepfunctions.send_task_failure(
            taskToken=probe.calls[0]["event"]["token"],
            error="CanaryStepRejected",
            cause="canary step rejected by carol: checkouts fail",
        )

    unwatch = clock.watch(reject_a_minute_in)
    try:
        # When it runs
        execution_arn = stepfunctions.start_execution(stateMachineArn=machine)["executionArn"]
        execution = _ended(execution_arn)
    finally:
        unwatch()

    # Then the Catch's state receives both, as `Error` and `Cause` (developer guide,
    # "Handling errors in Step Functions workflows")
    assert sent
    (caught,) = [
        json.loads(e["stateEnteredEventDetails"]["input"])
        for e in execution["history"]
        if e.get("stateEnteredEventDetails", {}).get("name") == "Caught"
    ]
    assert caught == {
        "Error": "CanaryStepRejected",
        "Cause": "canary step rejected by carol: checkouts fail",
    }
