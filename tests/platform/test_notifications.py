"""What the environment's topic tells people (phoenix/platform/notifications.py): one
rule per kind of message, each a line of text, and the key lets EventBridge publish to
the encrypted topic."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.conftest import SynthesizedApp

KINDS = [
    "Release Succeeded",
    "Release Rolled Back",
    "Release Failed",
    "Canary Approval Requested",
    "Plan Halted",
    "Fleet Drift Detected",
]


def _rules(template: Template, environment: str) -> dict[str, dict[str, Any]]:
    suffix = ", to the topic as text"
    return {
        str(r["Properties"]["Description"]).removeprefix(f"phoenix {environment}: ")[
            : -len(suffix)
        ]: r["Properties"]
        for r in template.find_resources("AWS::Events::Rule").values()
        if str(r["Properties"]["Description"]).endswith(suffix)
    }


@pytest.mark.parametrize("environment", ["sandbox", "production"])
def test_each_outcome_and_a_fleet_alarm_reach_the_topic_as_text(
    synthesized: SynthesizedApp, environment: str
) -> None:
    template = Template.from_json(synthesized.template(f"phoenix-{environment}"))
    rules = _rules(template, environment)
    assert set(rules) == {*KINDS, "a fleet's alarm in ALARM"}
    (topic,) = template.find_resources("AWS::SNS::Topic")
    for kind in KINDS:
        rule = rules[kind]
        assert rule["EventPattern"] == {
            "source": ["phoenix"],
            "detail-type": [kind],
            "detail": {"environment": [environment]},
        }
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Ref": topic}
        text = target["InputTransformer"]["InputTemplate"]
        assert text.startswith(f'"phoenix {environment}: ')  # a JSON string: one line of text
        assert json.loads(text.replace("<", "").replace(">", ""))
        assert "phoenix " in text[len(f'"phoenix {environment}: ') :]  # how to look further
        # every field is EventBridge's placeholder, never a CDK token's text
        assert "${" not in text, text
        if kind.startswith("Release"):
            assert f"phoenix history <detail-fleet> --env {environment}" in text


def test_the_key_lets_eventbridge_publish_to_the_encrypted_topic(
    synthesized: SynthesizedApp,
) -> None:
    template = Template.from_json(synthesized.template("phoenix-sandbox"))
    (key,) = template.find_resources("AWS::KMS::Key").values()
    (statement,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "EventBridgePublishesToEncryptedTopics"
    ]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
