"""No event lost without a trace: every rule target of every region stack has a retry
policy and the stack's undelivered-events queue as its dead-letter queue, every function a
rule invokes sends its last failure there, and the queue is encrypted and alarmed."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.conftest import SynthesizedApp

APPS = ["synthesized", "promotion_synthesized"]


def _region_stacks(app: SynthesizedApp) -> list[tuple[str, dict[str, Any]]]:
    return [
        (artifact.stack_name, artifact.template)
        for artifact in app.stack_artifacts()
        if "AWS::Events::Rule" in {r["Type"] for r in artifact.template["Resources"].values()}
    ]


def _queue(template: dict[str, Any]) -> str:
    (queue,) = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"]
    return queue


@pytest.mark.parametrize("app", APPS)
def test_every_rule_target_retries_and_then_sends_to_the_stacks_queue(
    app: str, request: pytest.FixtureRequest
) -> None:
    stacks = _region_stacks(request.getfixturevalue(app))
    assert stacks
    for name, template in stacks:
        queue = {"Fn::GetAtt": [_queue(template), "Arn"]}
        rules = Template.from_json(template).find_resources("AWS::Events::Rule")
        for logical, rule in rules.items():
            for target in rule["Properties"]["Targets"]:
                where = f"{name}: {logical} -> {target['Id']}"
                assert target["DeadLetterConfig"] == {"Arn": queue}, where
                if ":event-bus/" not in str(target["Arn"]):
                    # (an event bus target takes no retry policy: EventBridge's own)
                    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400, where


@pytest.mark.parametrize("app", APPS)
def test_every_function_a_rule_invokes_sends_its_last_failure_to_the_queue(
    app: str, request: pytest.FixtureRequest
) -> None:
    for name, template in _region_stacks(request.getfixturevalue(app)):
        resources = template["Resources"]
        invoked = {
            target["Arn"]["Fn::GetAtt"][0]
            for rule in resources.values()
            if rule["Type"] == "AWS::Events::Rule"
            for target in rule["Properties"]["Targets"]
            if isinstance(target["Arn"], dict)
            and resources.get(target["Arn"].get("Fn::GetAtt", [""])[0], {}).get("Type")
            == "AWS::Lambda::Function"
        }
        assert invoked, name
        configs = {
            c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
            for c in resources.values()
            if c["Type"] == "AWS::Lambda::EventInvokeConfig"
        }
        queue = {"Fn::GetAtt": [_queue(template), "Arn"]}
        for function in invoked:
            config = configs[function]
            assert config["MaximumRetryAttempts"] == 2, (name, function)
            assert config["DestinationConfig"] == {"OnFailure": {"Destination": queue}}


def test_the_queue_is_encrypted_with_the_environment_key_and_alarmed(
    synthesized: SynthesizedApp,
) -> None:
    template = synthesized.template("phoenix-production")
    resources = template["Resources"]
    queue = resources[_queue(template)]["Properties"]
    (key,) = [n for n, r in resources.items() if r["Type"] == "AWS::KMS::Key"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    (alarm,) = [
        r["Properties"]
        for n, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and n.startswith("UndeliveredDepth")
    ]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["AlarmActions"]
    # Not a fleet's alarm: those (`phoenix-<env>-...`) roll their fleet back
    assert not alarm["AlarmName"].startswith("phoenix-production-")
    # And EventBridge may use the key, for this account's rules only
    statements = resources[key]["Properties"]["KeyPolicy"]["Statement"]
    (events,) = [s for s in statements if s.get("Sid") == "EventBridgeUsesTheKey"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert "aws:SourceAccount" in events["Condition"]["StringEquals"]
