"""The synthesized app: valid CloudFormation, no unacknowledged cdk-nag finding, secure defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template
from cfnlint.api import lint_file

from app import add_environments, cli_context, new_app
from phoenix.config.environment import EnvironmentConfig
from phoenix.stage import PhoenixStage
from tests.conftest import SynthesizedApp

REPO = Path(__file__).resolve().parents[1]

# cfn-lint warnings we accept, each with the reason. Errors are never accepted.
ACCEPTED_CFN_LINT_WARNINGS = {
    "W3005": "CDK's own custom-resource providers (restrict the VPC default security group) "
    "declare DependsOn on a role they also reference with GetAtt; harmless and not ours.",
}


def test_make_synth_ignores_exactly_the_accepted_warnings() -> None:
    settings = yaml.safe_load((REPO / ".cfnlintrc.yaml").read_text())
    assert set(settings["ignore_checks"]) == set(ACCEPTED_CFN_LINT_WARNINGS)


APPS = ["synthesized", "promotion_synthesized"]  # config/, and examples/promotion


def test_every_template_of_the_promotion_example_passes_cfn_lint(
    promotion_synthesized: SynthesizedApp,
) -> None:
    # (config/'s templates are linted as `make synth` lints them: tests/test_cli.py)
    findings = []
    for artifact in promotion_synthesized.stack_artifacts():
        for match in lint_file(Path(artifact.template_full_path)):
            if match.rule.id not in ACCEPTED_CFN_LINT_WARNINGS:
                findings.append(f"{artifact.stack_name}: {match.rule.id} {match.message}")
    assert findings == []


def _nag_report(synthesized: SynthesizedApp) -> dict[str, Any]:
    report = json.loads(
        (Path(synthesized.assembly.directory) / "validation-report.json").read_text()
    )
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    return dict(nag)


@pytest.mark.parametrize("app", APPS)
def test_no_unacknowledged_cdk_nag_finding_remains(
    app: str, request: pytest.FixtureRequest
) -> None:
    nag = _nag_report(request.getfixturevalue(app))
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


@pytest.mark.parametrize("app", APPS)
def test_every_cdk_nag_acknowledgment_has_a_reason_at_the_narrowest_scope(
    app: str, request: pytest.FixtureRequest
) -> None:
    synthesized: SynthesizedApp = request.getfixturevalue(app)
    for suppressed in _nag_report(synthesized)["suppressedViolations"]:
        assert len(suppressed["reason"]) > 30, suppressed["ruleName"]
        # Acknowledged on a construct inside a stack, never on a stage or a whole stack.
        assert suppressed["acknowledgedAt"].count("/") >= 2, suppressed["acknowledgedAt"]
        for construct in suppressed["violatingConstructs"]:
            assert construct["constructPath"].startswith(suppressed["acknowledgedAt"] + "/")


def test_synthesis_fails_on_a_finding_nobody_acknowledged(
    tmp_path: Path, environment_configs: dict[str, EnvironmentConfig]
) -> None:
    # Given the sandbox app with a bucket that accepts plain-HTTP requests
    app = new_app(outdir=str(tmp_path), context=cli_context())
    add_environments(app, [environment_configs["sandbox"]])
    (stage,) = [child for child in app.node.children if isinstance(child, PhoenixStage)]
    s3.Bucket(stage.stacks[0], "Careless")

    # When it is synthesized, then cdk-nag stops it and names the rule
    with pytest.raises(RuntimeError, match="ValidationFailed") as raised:
        app.synth()
    assert "sandbox/phoenix-sandbox/Careless" in str(raised.value)
    assert "AwsSolutions-S10" in str(raised.value)


def test_one_stack_per_region_named_after_the_environment(synthesized: SynthesizedApp) -> None:
    names = {(a.stack_name, a.environment.region) for a in synthesized.stack_artifacts()}
    assert ("phoenix-sandbox", "unknown-region") in names
    assert ("phoenix-production", "us-east-1") in names
    assert ("phoenix-production-us-west-2", "us-west-2") in names


@pytest.mark.parametrize("environment", ["sandbox", "production"])
def test_the_environment_key_rotates_and_outlives_the_stack(
    synthesized: SynthesizedApp, environment: str
) -> None:
    template = Template.from_json(synthesized.template(f"phoenix-{environment}"))
    template.has_resource(
        "AWS::KMS::Key",
        {
            "Properties": Match.object_like({"EnableKeyRotation": True}),
            "DeletionPolicy": "Retain",
        },
    )


@pytest.mark.parametrize("environment", ["sandbox", "production"])
def test_logs_are_encrypted_and_kept_as_configured(
    synthesized: SynthesizedApp, environment: str
) -> None:
    template = Template.from_json(synthesized.template(f"phoenix-{environment}"))
    days = synthesized.configs[environment].functions.log_retention_days
    groups = template.find_resources("AWS::Logs::LogGroup")
    assert groups
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == days
        assert "KmsKeyId" in group["Properties"]
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )


def test_private_subnets_never_give_instances_public_addresses(
    synthesized: SynthesizedApp,
) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    subnets = template.find_resources("AWS::EC2::Subnet")
    private = {
        name: subnet
        for name, subnet in subnets.items()
        if {"Key": "aws-cdk:subnet-type", "Value": "Private"} in subnet["Properties"]["Tags"]
    }
    assert len(private) == synthesized.configs["production"].network.availability_zones
    assert all(not s["Properties"]["MapPublicIpOnLaunch"] for s in private.values())


def test_zones_are_resolved_at_deploy_time_not_hard_coded(synthesized: SynthesizedApp) -> None:
    for artifact in synthesized.stack_artifacts():
        template = Template.from_json(artifact.template)
        for subnet in template.find_resources("AWS::EC2::Subnet").values():
            zone = subnet["Properties"]["AvailabilityZone"]
            assert "Fn::Select" in zone
            assert zone["Fn::Select"][1] == {"Fn::GetAZs": ""}


def test_notifications_are_encrypted_tls_only_and_mailed(synthesized: SynthesizedApp) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )
    for email in synthesized.configs["production"].notifications.emails:
        template.has_resource_properties(
            "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": email}
        )


def test_production_stacks_are_protected_from_deletion(synthesized: SynthesizedApp) -> None:
    protection = {a.stack_name: a.termination_protection for a in synthesized.stack_artifacts()}
    assert protection["phoenix-production"] is True
    assert protection["phoenix-production-us-west-2"] is True
    assert not protection["phoenix-sandbox"]
