"""Lambda dispatch, EventBridge delivery and alarm events, against documented AWS behaviour."""

from __future__ import annotations

import io
import json
import sys
import time
import types
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from local import eventbridge, install_extensions
from local.eventbridge import select, transform
from tests.local.eventbus import EventQueue
from tests.sample_events import sample_event

if TYPE_CHECKING:
    from types_boto3_events.type_defs import TargetTypeDef

REGION = "us-east-1"
HANDLER = "phoenix.probe_dispatch.runtime.handler.lambda_handler"
HANDLER_MODULE = HANDLER.rpartition(".")[0]
HANDLER_FILE = HANDLER_MODULE.replace(".", "/") + ".py"
received: list[dict[str, Any]] = []


def _probe_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import os  # noqa: PLC0415 - read at call time, as a handler reads its settings

    if event.get("fail"):
        raise ValueError("the probe was told to fail")
    if event.get("sleep"):
        time.sleep(float(event["sleep"]))
        return {}
    received.append(event)
    return {
        "table": os.environ.get("PHOENIX_TABLE_NAME"),
        "function": context.function_name,
        "remaining_ms_positive": context.get_remaining_time_in_millis() > 0,
    }


@pytest.fixture
def aws() -> Iterator[None]:
    # A handler module as the Lambda factory packages it: phoenix.<component>.runtime.<module>
    module = types.ModuleType(HANDLER_MODULE)
    module.lambda_handler = _probe_handler  # type: ignore[attr-defined]
    sys.modules[HANDLER_MODULE] = module
    received.clear()
    with mock_aws():
        install_extensions(None)
        yield
    del sys.modules[HANDLER_MODULE]


def _function(timeout: int = 3, *, packaged: tuple[str, ...] = (HANDLER_FILE,)) -> str:
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="probe",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            }
        ),
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("phoenix/__init__.py", "")
        for name in packaged:
            zipped.writestr(name, "")
    function = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="phoenix-probe",
        Runtime="python3.14",
        Role=role,
        Handler=HANDLER,
        Code={"ZipFile": archive.getvalue()},
        Timeout=timeout,
        Environment={"Variables": {"PHOENIX_TABLE_NAME": "ledger"}},
    )
    return str(function["FunctionArn"])


def _invoke(payload: dict[str, Any]) -> dict[str, Any]:
    response = boto3.client("lambda", region_name=REGION).invoke(
        FunctionName="phoenix-probe", Payload=json.dumps(payload).encode()
    )
    return {
        "error": response.get("FunctionError"),
        "payload": json.loads(response["Payload"].read()),
    }


def test_a_package_without_the_handlers_module_fails_as_lambda_fails_it(aws: None) -> None:
    # Given a function whose deployed package lacks its handler's module
    _function(packaged=())

    # When it is invoked
    result = _invoke({"hello": "world"})

    # Then Lambda's runtime error comes back, and the in-process module never ran
    assert result["error"] == "Unhandled"
    assert result["payload"]["errorType"] == "Runtime.ImportModuleError"
    assert HANDLER_MODULE in result["payload"]["errorMessage"]
    assert received == []


def test_a_phoenix_handler_runs_in_process_with_its_environment_and_context(aws: None) -> None:
    _function()
    result = _invoke({"hello": "world"})
    assert result == {
        "error": None,
        "payload": {"table": "ledger", "function": "phoenix-probe", "remaining_ms_positive": True},
    }
    assert received == [{"hello": "world"}]
    import os  # noqa: PLC0415

    assert "PHOENIX_TABLE_NAME" not in os.environ  # only for the call's duration


def test_an_exception_is_returned_as_lambda_returns_it(aws: None) -> None:
    _function()
    result = _invoke({"fail": True})
    assert result["error"] == "Unhandled"
    assert result["payload"]["errorType"] == "ValueError"
    assert result["payload"]["errorMessage"] == "the probe was told to fail"
    assert result["payload"]["stackTrace"]
    assert result["payload"]["requestId"]


def test_a_handler_past_its_timeout_is_answered_as_a_timeout(aws: None) -> None:
    _function(timeout=1)
    started = time.monotonic()
    result = _invoke({"sleep": 3})
    assert time.monotonic() - started < 2.5
    assert result["error"] == "Unhandled"
    assert result["payload"]["errorMessage"].endswith("Task timed out after 1.00 seconds")


def _rule(pattern: dict[str, Any], target: TargetTypeDef) -> None:
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="probe", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="probe", Targets=[target])


def _put(source: str, detail_type: str, detail: dict[str, Any]) -> None:
    response = boto3.client("events", region_name=REGION).put_events(
        Entries=[{"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )
    assert response["FailedEntryCount"] == 0
    eventbridge.drain()  # Lambda and Step Functions targets are delivered asynchronously


def test_a_matching_event_reaches_a_lambda_through_an_input_transformer(aws: None) -> None:
    arn = _function()
    _rule(
        {"source": ["phoenix"], "detail-type": ["Release Requested"]},
        {
            "Id": "1",
            "Arn": arn,
            "InputTransformer": {
                "InputPathsMap": {"fleet": "$.detail.fleet", "ami": "$.detail.ami"},
                "InputTemplate": '{"fleet": <fleet>, "note": "release <ami> to <fleet>"}',
            },
        },
    )
    _put("phoenix", "Release Requested", {"fleet": "web", "ami": "ami-1"})
    _put("phoenix", "Rollback Requested", {"fleet": "web"})  # matches no rule
    assert received == [{"fleet": "web", "note": "release ami-1 to web"}]


def test_a_matching_event_starts_a_state_machine_with_the_selected_input(aws: None) -> None:
    role = "arn:aws:iam::123456789012:role/states"
    machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="release",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=role,
    )["stateMachineArn"]
    _rule({"source": ["aws.imagebuilder"]}, {"Id": "1", "Arn": machine, "InputPath": "$.detail"})
    _put(
        "aws.imagebuilder",
        "EC2 Image Builder Image State Change",
        {"state": {"status": "AVAILABLE"}},
    )
    (execution,) = boto3.client("stepfunctions", region_name=REGION).list_executions(
        stateMachineArn=machine
    )["executions"]
    described = boto3.client("stepfunctions", region_name=REGION).describe_execution(
        executionArn=execution["executionArn"]
    )
    assert json.loads(described["input"]) == {"state": {"status": "AVAILABLE"}}


def test_input_transformer_quotes_as_eventbridge_does() -> None:
    event = {"detail": {"name": "web", "count": 2, "tags": ["a"], "quote": 'say "hi"'}}
    paths = {
        "n": "$.detail.name",
        "c": "$.detail.count",
        "t": "$.detail.tags",
        "q": "$.detail.quote",
        "missing": "$.detail.nothing",
    }
    template = '{"name": <n>, "count": <c>, "tags": <t>, "text": "<n> x<c> <q>", "m": <missing>}'
    assert json.loads(transform(template, paths, event)) == {
        "name": "web",
        "count": 2,
        "tags": ["a"],
        "text": 'web x2 say "hi"',
        "m": None,
    }


def test_jsonpath_selection() -> None:
    event = {"detail": {"items": [{"id": "a"}]}, "resources": ["arn:1"]}
    assert select(event, "$") == event
    assert select(event, "$.resources[0]") == "arn:1"
    assert select(event, "$.detail.items[0].id") == "a"
    assert select(event, "$.detail.nope") is None


def test_an_alarm_state_change_publishes_the_documented_event(aws: None) -> None:
    # Given a rule like phoenix's rollback rule, delivering to a queue we can read
    queue = EventQueue.for_pattern(
        "alarms",
        {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {"state": {"value": ["ALARM"]}},
        },
    )
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName="phoenix-sandbox-web-5xx-rate",
        MetricName="m",
        Namespace="n",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Statistic="Sum",
        AlarmDescription="5xx above 5%",
    )

    # When the alarm goes to ALARM, and is set to ALARM again (no change)
    for _ in range(2):
        cloudwatch.set_alarm_state(
            AlarmName="phoenix-sandbox-web-5xx-rate",
            StateValue="ALARM",
            StateReason="test",
            StateReasonData=json.dumps({"version": "1.0"}),
        )

    # Then exactly one event arrives, shaped like AWS's sample
    (event,) = queue.received()
    sample = sample_event("cloudwatch_alarm_state_change")
    assert set(event) >= set(sample) - {"version"}
    assert set(event["detail"]) == set(sample["detail"])
    assert set(event["detail"]["state"]) == set(sample["detail"]["state"])
    assert event["detail"]["alarmName"] == "phoenix-sandbox-web-5xx-rate"
    assert (event["detail"]["previousState"]["value"], event["detail"]["state"]["value"]) == (
        "OK",
        "ALARM",
    )
    assert event["resources"] == [
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:phoenix-sandbox-web-5xx-rate"
    ]


def test_a_state_machine_task_invokes_a_phoenix_handler_through_moto_s_interpreter(
    aws: None,
) -> None:
    # Given a state machine whose Task calls the function, as CDK's LambdaInvoke renders it
    arn = _function()
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "End": True,
            }
        },
    }
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    machine = stepfunctions.create_state_machine(
        name="probe",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/states",
    )["stateMachineArn"]

    # When it runs
    execution = stepfunctions.start_execution(stateMachineArn=machine, input='{"step": 1}')
    deadline = time.monotonic() + 20
    while True:
        described = stepfunctions.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    # Then the handler ran in-process and its result is the execution's output
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["function"] == "phoenix-probe"
    assert {"step": 1} in received


def test_a_target_that_cannot_take_the_event_never_fails_the_producer(aws: None) -> None:
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:gone"
    _rule({"source": ["phoenix"]}, {"Id": "1", "Arn": missing})
    _put("phoenix", "Release Requested", {"fleet": "web"})  # asserts FailedEntryCount == 0
