"""The release entry point: an AVAILABLE image of this environment starts the release."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from tests.conftest import SynthesizedApp


def _rules(template: Template) -> list[dict[str, object]]:
    return [r["Properties"] for r in template.find_resources("AWS::Events::Rule").values()]


def test_the_rule_matches_available_images_of_this_environments_pipelines(
    synthesized: SynthesizedApp,
) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    (rule,) = _rules(template)
    pattern = rule["EventPattern"]
    assert isinstance(pattern, dict)
    assert pattern["source"] == ["aws.imagebuilder"]
    assert pattern["detail-type"] == ["EC2 Image Builder Image State Change"]
    assert pattern["detail"] == {"state": {"status": ["AVAILABLE"]}}
    (resource,) = pattern["resources"]
    assert json.dumps(resource).endswith(':image/phoenix-production-golden/"]]}}')
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine")
    targets = rule["Targets"]
    assert isinstance(targets, list)
    assert [t["Arn"] for t in targets] == [{"Ref": machine}]


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


def test_only_the_primary_region_starts_releases(synthesized: SynthesizedApp) -> None:
    template = Template.from_json(synthesized.template("phoenix-production-us-west-2"))
    assert template.find_resources("AWS::StepFunctions::StateMachine") == {}
    assert _rules(template) == []
