"""The rollback function's infrastructure (phoenix/rollback/alarm_rollback.py): the
environment's alarms going to ALARM and the `phoenix` requests reach it; it finds each
alarm's fleet in the registry, and its environment holds no fleet; its role grants exactly
the calls it makes, each one a call its code makes."""

from __future__ import annotations

import ast
import json
import re
from typing import Any, get_args

import boto3
import pytest
from aws_cdk.assertions import Template
from moto import mock_aws

from phoenix.kernel.names import registered_fleet
from phoenix.release.spec import REGISTRY_READ
from phoenix.rollback.alarm_rollback import REQUESTS, ROLLBACK_FLEET_CALLS, ROLLBACK_LEDGER_CALLS
from phoenix.rollback.runtime import handler
from phoenix.rollback.runtime.approval import StepDecision
from phoenix.rollback.runtime.events import FleetRequest
from tests.code import handler_module, modules_reached
from tests.conftest import SynthesizedApp
from tests.iam import ASYNC_DESTINATION, EVERY_FUNCTION, TABLE_KEY, actions_of, granted_actions
from tests.release.release_state import CREDENTIALS, fleet_spec

HANDLER = "phoenix.rollback.runtime.handler.lambda_handler"
# Where the rollback's calls are made (its handler and what it calls them through).
CODE = modules_reached(handler_module(HANDLER))
ENVIRONMENTS = ["sandbox", "production"]  # the primary stacks: where releases run
CALLS = {
    *ROLLBACK_LEDGER_CALLS,
    *ROLLBACK_FLEET_CALLS,
    "states:StartExecution",
    "states:StopExecution",
    # a decision on a held canary step answers its token
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    "events:PutEvents",
    REGISTRY_READ,
}


def _template(synthesized: SynthesizedApp, environment: str) -> Template:
    return Template.from_json(synthesized.template(f"phoenix-{environment}"))


def _release_machine(template: Template) -> list[str]:
    """The release state machine's logical id (a plan's state machines are others)."""
    machines = template.find_resources("AWS::StepFunctions::StateMachine")
    return [name for name in machines if name.startswith("ReleaseStateMachine")]


def _function(template: Template) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (name, dict(f))
        for name, f in template.find_resources("AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == HANDLER
    ]
    return found


def _rule(template: Template, description: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (name, r["Properties"])
        for name, r in template.find_resources("AWS::Events::Rule").items()
        if r["Properties"]["Description"] == description
    ]
    return found


def _statements(template: Template) -> list[dict[str, Any]]:
    role = _function(template)[1]["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _targets_the_function(template: Template, rule: str, properties: dict[str, Any]) -> None:
    function = _function(template)[0]
    assert [t["Arn"] for t in properties["Targets"]] == [{"Fn::GetAtt": [function, "Arn"]}]
    (permission,) = [
        p["Properties"]
        for p in template.find_resources("AWS::Lambda::Permission").values()
        if p["Properties"]["SourceArn"] == {"Fn::GetAtt": [rule, "Arn"]}
    ]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}


# --- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_environment_s_alarms_going_to_alarm_reach_the_rollback_function(
    synthesized: SynthesizedApp, environment: str
) -> None:
    template = _template(synthesized, environment)
    name, rule = _rule(template, f"phoenix {environment}: a fleet's alarm in ALARM rolls back")
    assert rule["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {
            "alarmName": [{"prefix": f"phoenix-{environment}-"}],
            "state": {"value": ["ALARM"]},
        },
    }
    assert rule.get("State", "ENABLED") == "ENABLED"
    _targets_the_function(template, name, rule)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_rollback_pause_and_resume_requests_reach_the_rollback_function(
    synthesized: SynthesizedApp, environment: str
) -> None:
    template = _template(synthesized, environment)
    description = f"phoenix {environment}: rollback, pause, resume and canary decisions by request"
    name, rule = _rule(template, description)
    assert rule["EventPattern"] == {
        "source": ["phoenix"],
        "detail-type": [
            "Rollback Requested",
            "Releases Paused",
            "Releases Resumed",
            "Canary Step Approved",
            "Canary Step Rejected",
        ],
    }
    _targets_the_function(template, name, rule)


def test_the_requests_matched_are_those_the_handler_takes() -> None:
    requests = get_args(FleetRequest.model_fields["detail_type"].annotation)
    decisions = get_args(StepDecision.model_fields["detail_type"].annotation)
    assert {*requests, *decisions} == set(REQUESTS)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_alarm_of_a_fleet_is_matched_and_rolls_that_fleet_back(
    synthesized: SynthesizedApp, environment: str
) -> None:
    template = _template(synthesized, environment)
    config = synthesized.configs[environment]
    fleets = {f.name.replace("-", ""): f.name for f in config.fleets}
    # (the undelivered events' alarm is not a fleet's: tests/platform/test_undelivered.py;
    # nor are the failed releases' and failed drills' alarms, whose names no fleet's can
    # begin: below)
    alarms = {
        logical: alarm
        for logical, alarm in template.find_resources("AWS::CloudWatch::Alarm").items()
        if not logical.startswith(("UndeliveredDepth", "DashboardFailedReleases", "DrillsFailed"))
    }
    assert alarms
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1", **CREDENTIALS)
        for fleet in config.fleets:
            spec = fleet_spec(fleet.strategy, name=fleet.name)
            ssm.put_parameter(
                Name=registered_fleet(environment, fleet.name),
                Value=json.dumps(spec),
                Type="String",
            )
        for logical_id, alarm in alarms.items():
            owner = re.match(r"Fleet([A-Za-z0-9]+?)Alarms", logical_id)
            assert owner, logical_id
            name = alarm["Properties"]["AlarmName"]
            assert name.startswith(f"phoenix-{environment}-")  # the rule's prefix
            found, _ = handler._fleet_of_alarm(ssm, name, environment)
            assert found.name == fleets[owner.group(1)], name
        for own in ("releases-failed", "rollback-drills-failed"):
            with pytest.raises(handler.RefusedError, match="is no fleet's"):
                handler._fleet_of_alarm(ssm, f"phoenix-{environment}--{own}", environment)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_function_knows_the_release_state_machine_and_no_fleet(
    synthesized: SynthesizedApp, environment: str
) -> None:
    template = _template(synthesized, environment)
    variables = _function(template)[1]["Properties"]["Environment"]["Variables"]
    (machine,) = _release_machine(template)
    assert variables["PHOENIX_STATE_MACHINE_ARN"] == {"Ref": machine}
    assert variables["PHOENIX_ENVIRONMENT"] == environment
    assert "PHOENIX_FLEETS" not in variables
    written = json.dumps(variables)
    assert not [f.name for f in synthesized.configs[environment].fleets if f.name in written]


# --- least privilege ------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_rollback_function_is_granted_exactly_its_calls(
    synthesized: SynthesizedApp, environment: str
) -> None:
    statements = _statements(_template(synthesized, environment))
    # (an alarm's rule invokes it asynchronously: ASYNC_DESTINATION)
    expected = {*CALLS, *EVERY_FUNCTION, *TABLE_KEY, *ASYNC_DESTINATION}
    assert granted_actions(statements) == expected


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_write_is_granted_on_every_resource(
    synthesized: SynthesizedApp, environment: str
) -> None:
    for statement in _statements(_template(synthesized, environment)):
        if statement["Resource"] == "*" and "Condition" not in statement:
            for action in actions_of(statement):
                # answering a task token: Step Functions has no resource to name (Service
                # Authorization Reference); the token is the authority
                if action in ("states:SendTaskSuccess", "states:SendTaskFailure"):
                    continue
                verb = action.split(":")[1]
                assert verb.startswith(("Describe", "Get", "PutTrace", "PutTelemetry")), action


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_executions_are_started_and_stopped_only_on_the_release_state_machine(
    synthesized: SynthesizedApp, environment: str
) -> None:
    template = _template(synthesized, environment)
    (machine,) = _release_machine(template)
    statements = _statements(template)
    (start,) = [s for s in statements if "states:StartExecution" in actions_of(s)]
    (stop,) = [s for s in statements if "states:StopExecution" in actions_of(s)]
    (put,) = [s for s in statements if "events:PutEvents" in actions_of(s)]
    assert (actions_of(start), start["Resource"]) == (["states:StartExecution"], {"Ref": machine})
    assert actions_of(stop) == ["states:StopExecution"]
    joined = stop["Resource"]["Fn::Join"][1]
    arn = "".join(part if isinstance(part, str) else "<token>" for part in joined)
    assert arn.startswith("arn:")
    assert arn.endswith(f":execution:phoenix-{environment}-release:*")
    assert "Condition" not in stop
    assert put["Resource"]["Fn::Join"][1][-1] == ":event-bus/default"


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _called_methods() -> set[str]:
    return {
        node.func.attr
        for path in CODE
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


@pytest.mark.parametrize("action", sorted(CALLS))
def test_every_call_the_rollback_is_granted_is_one_its_code_makes(action: str) -> None:
    assert _snake(action.split(":")[1]) in _called_methods(), f"the rollback never calls {action}"
