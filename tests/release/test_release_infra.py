"""The release entry point: an AVAILABLE image of this environment starts the release."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from tests.conftest import SynthesizedApp
from tests.iam import ASYNC_DESTINATION, granted_actions


def _rules(template: Template) -> dict[str, dict[str, Any]]:
    return {
        str(r["Properties"]["Description"]): r["Properties"]
        for r in template.find_resources("AWS::Events::Rule").values()
    }


def _trigger(template: Template) -> str:
    (function,) = [
        name
        for name, f in template.find_resources("AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == "phoenix.release.handlers.trigger.lambda_handler"
    ]
    return function


def test_available_images_of_this_environment_reach_the_release_trigger(
    synthesized: SynthesizedApp,
) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    rule = _rules(template)["phoenix production: a baked image starts a release"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.imagebuilder"]
    assert pattern["detail-type"] == ["EC2 Image Builder Image State Change"]
    assert pattern["detail"] == {"state": {"status": ["AVAILABLE"]}}
    (resource,) = pattern["resources"]
    assert json.dumps(resource).endswith(':image/phoenix-production-golden/"]]}}')
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": [_trigger(template), "Arn"]}]


def test_a_release_requested_by_hand_reaches_the_release_trigger(
    synthesized: SynthesizedApp,
) -> None:
    template = Template.from_json(synthesized.template("phoenix-sandbox"))
    rule = _rules(template)["phoenix sandbox: a release asked for by hand"]
    assert rule["EventPattern"] == {"source": ["phoenix"], "detail-type": ["Release Requested"]}
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": [_trigger(template), "Arn"]}]


def test_the_trigger_holds_no_fleet_and_may_only_read_the_registry_images_pointers_and_start(
    synthesized: SynthesizedApp,
) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    trigger = template.find_resources("AWS::Lambda::Function")[_trigger(template)]
    variables = trigger["Properties"]["Environment"]["Variables"]
    assert "PHOENIX_SUBSCRIPTIONS" not in variables  # the registry says who subscribes
    assert "AWS_REGION" not in variables  # reserved: the runtime sets it
    role = trigger["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert granted_actions(statements) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "states:StartExecution",
        "imagebuilder:GetImage",
        "ssm:GetParameters",
        "ssm:GetParametersByPath",
        *ASYNC_DESTINATION,  # rules invoke it: its last failure goes to the queue
    }
    (images,) = [s for s in statements if s["Action"] == "imagebuilder:GetImage"]
    assert json.dumps(images["Resource"]).endswith(':image/phoenix-production-golden/*"]]}')
    # the registry's parameters and the release pointers, the same for any number of fleets
    reads = [
        json.dumps(resource)
        for s in statements
        if s["Action"] == "ssm:GetParameters"
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert sorted(read.rsplit(":", 1)[1] for read in reads) == [
        'parameter/phoenix-fleets/production/*"]]}',
        'parameter/phoenix/production/*/ami"]]}',
    ]
    (listed,) = [s for s in statements if s["Action"] == "ssm:GetParametersByPath"]
    assert json.dumps(listed["Resource"]).endswith(':parameter/phoenix-fleets/production"]]}')
    assert variables["PHOENIX_STACK_ID"] == {"Ref": "AWS::StackId"}


def test_a_finished_deploy_of_the_stack_reaches_the_release_trigger(
    synthesized: SynthesizedApp,
) -> None:
    template = Template.from_json(synthesized.template("phoenix-sandbox"))
    rule = _rules(template)[
        "phoenix sandbox: a deploy's launch template changes go out as a release"
    ]
    pattern = rule["EventPattern"]
    stack, fleet_stacks = pattern.pop("resources")
    assert pattern == {
        "source": ["aws.cloudformation"],
        "detail-type": ["CloudFormation Stack Status Change"],
        "detail": {"status-details": {"status": ["UPDATE_COMPLETE"]}},
    }
    # this stack, and its fleet stacks by their names' prefix
    assert stack == {"Ref": "AWS::StackId"}
    separator, parts = fleet_stacks["prefix"]["Fn::Join"]
    rendered = separator.join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)
    assert rendered == (
        "arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:"
        "stack/<AWS::StackName>-fleets-"
    )
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": [_trigger(template), "Arn"]}]


def test_the_state_machine_is_standard_logged_and_traced(synthesized: SynthesizedApp) -> None:
    template = Template.from_json(synthesized.template("phoenix-sandbox"))
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": "phoenix-sandbox-release",
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like(
                {"Level": "ALL", "IncludeExecutionData": True}
            ),
        },
    )
