"""GoldenImagePipeline: what the pipeline bakes with, where it goes, how long it is kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from aws_cdk.assertions import Template

from phoenix.config.environment import EnvironmentConfig
from tests.conftest import ChangedSandbox, SynthesizedApp

COMPONENTS = Path(__file__).resolve().parents[2] / "phoenix" / "images" / "components"


def _one(template: Template, kind: str) -> dict[str, Any]:
    (resource,) = template.find_resources(kind).values()
    return dict(resource["Properties"])


def _production(synthesized: SynthesizedApp) -> Template:
    return Template.from_json(synthesized.template("phoenix-production"))


def test_components_are_the_versioned_documents_in_images_components(
    synthesized: SynthesizedApp, environment_configs: dict[str, EnvironmentConfig]
) -> None:
    components = _production(synthesized).find_resources("AWS::ImageBuilder::Component")
    documents = {
        c["Properties"]["Name"].removeprefix("phoenix-production-golden-"): c["Properties"]
        for c in components.values()
    }
    assert set(documents) == {p.stem for p in COMPONENTS.glob("*.yaml")}
    version = environment_configs["production"].image_pipelines[0].version
    for stem, component in documents.items():
        assert component["Data"] == (COMPONENTS / f"{stem}.yaml").read_text()
        assert component["Version"] == version
        yaml.safe_load(component["Data"])  # a valid document


def test_the_recipe_starts_from_the_public_parameter_and_encrypts_with_the_env_key(
    synthesized: SynthesizedApp, environment_configs: dict[str, EnvironmentConfig]
) -> None:
    template = _production(synthesized)
    recipe = _one(template, "AWS::ImageBuilder::ImageRecipe")
    pipeline = environment_configs["production"].image_pipelines[0]
    assert recipe["ParentImage"] == f"ssm:{pipeline.parent_image_ssm_parameter}"
    assert recipe["Version"] == pipeline.version
    (root,) = recipe["BlockDeviceMappings"]
    (key,) = template.find_resources("AWS::KMS::Key")
    assert root["Ebs"]["Encrypted"] is True
    assert root["Ebs"]["KmsKeyId"] == {"Fn::GetAtt": [key, "Arn"]}


def test_the_test_and_inspector_components_get_their_parameters(
    synthesized: SynthesizedApp,
) -> None:
    recipe = _one(_production(synthesized), "AWS::ImageBuilder::ImageRecipe")
    parameters = {
        json.dumps(c["ComponentArn"]): {p["Name"]: p["Value"] for p in c.get("Parameters", [])}
        for c in recipe["Components"]
    }
    values = list(parameters.values())
    assert {"Service": ["nginx"]} in values
    assert {"Severities": ["CRITICAL,HIGH"]} in values  # fail_on_severity HIGH


def test_builds_run_private_with_imdsv2_and_terminate_on_failure(
    synthesized: SynthesizedApp,
) -> None:
    template = _production(synthesized)
    infrastructure = _one(template, "AWS::ImageBuilder::InfrastructureConfiguration")
    assert infrastructure["InstanceMetadataOptions"] == {
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
    }
    assert infrastructure["TerminateInstanceOnFailure"] is True
    assert "PrivateSubnet" in json.dumps(infrastructure["SubnetId"])
    assert "Notifications" in json.dumps(infrastructure["SnsTopicArn"])
    assert "BuildLogs" in json.dumps(infrastructure["Logging"])


def test_images_go_to_every_region_and_never_into_launch_templates(
    synthesized: SynthesizedApp,
) -> None:
    distribution = _one(_production(synthesized), "AWS::ImageBuilder::DistributionConfiguration")
    regions = [d["Region"] for d in distribution["Distributions"]]
    assert regions == ["us-east-1", "us-west-2"]
    for target in distribution["Distributions"]:
        assert "LaunchTemplateConfigurations" not in target
        assert "alias/phoenix/production" in json.dumps(
            target["AmiDistributionConfiguration"]["KmsKeyId"]
        )


def test_every_region_gets_the_same_ami_tags_and_no_rollback_target(
    synthesized: SynthesizedApp,
) -> None:
    # The primary's AMI and the disaster-recovery copy are tagged alike; neither is a
    # rollback target when baked (each region's release controller tags its own copy
    # while a fleet there may roll back to it: docs/adr/0008-rollback-target-tags.md)
    distribution = _one(_production(synthesized), "AWS::ImageBuilder::DistributionConfiguration")
    tags = [d["AmiDistributionConfiguration"]["AmiTags"] for d in distribution["Distributions"]]
    assert tags == [{"phoenix:pipeline": "phoenix-production-golden"}] * 2


def test_scanning_tests_and_schedule(synthesized: SynthesizedApp) -> None:
    pipeline = _one(_production(synthesized), "AWS::ImageBuilder::ImagePipeline")
    assert pipeline["ImageScanningConfiguration"] == {"ImageScanningEnabled": True}
    assert pipeline["ImageTestsConfiguration"]["ImageTestsEnabled"] is True
    assert pipeline["Schedule"] == {
        "ScheduleExpression": "cron(0 4 ? * MON *)",
        "PipelineExecutionStartCondition": "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE",
    }


def test_the_lifecycle_keeps_n_and_never_removes_a_rollback_target(
    synthesized: SynthesizedApp, environment_configs: dict[str, EnvironmentConfig]
) -> None:
    policy = _one(_production(synthesized), "AWS::ImageBuilder::LifecyclePolicy")
    (detail,) = policy["PolicyDetails"]
    keep = environment_configs["production"].image_pipelines[0].keep_images
    assert keep >= 3
    assert detail["Filter"] == {"Type": "COUNT", "Value": keep}
    excluded = detail["ExclusionRules"]["Amis"]
    assert excluded["TagMap"] == {"phoenix:rollback-target": "true"}
    assert excluded["LastLaunched"] == {"Unit": "DAYS", "Value": 30}


def test_only_the_primary_region_bakes(synthesized: SynthesizedApp) -> None:
    template = Template.from_json(synthesized.template("phoenix-production-us-west-2"))
    assert template.find_resources("AWS::ImageBuilder::ImagePipeline") == {}


def test_launch_permission_goes_to_the_configured_accounts(changed_sandbox: ChangedSandbox) -> None:
    template = Template.from_json(changed_sandbox.synthesized.template("phoenix-sandbox"))
    distribution = _one(template, "AWS::ImageBuilder::DistributionConfiguration")
    for target in distribution["Distributions"]:
        assert target["AmiDistributionConfiguration"]["LaunchPermissionConfiguration"] == {
            "UserIds": ["111122223333"]
        }


def test_the_accounts_given_launch_permission_may_use_the_key_that_encrypts_the_amis(
    changed_sandbox: ChangedSandbox, synthesized: SynthesizedApp
) -> None:
    # Given an environment whose pipeline shares its AMIs with 111122223333
    template = Template.from_json(changed_sandbox.synthesized.template("phoenix-sandbox"))
    statements = {
        s["Sid"]: s for s in _one(template, "AWS::KMS::Key")["KeyPolicy"]["Statement"] if "Sid" in s
    }
    shared = {
        "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::111122223333:root"]]}
    }
    # Then that account may use the key and give its own Auto Scaling service-linked role
    # a grant (which it creates itself: a GrantIsForAWSResource condition would refuse
    # it), and nothing more
    use = statements["SharedAmisUseTheKey"]
    assert use["Principal"] == shared
    assert set(use["Action"]) == {
        "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"
    }  # fmt: skip
    grant = statements["SharedAmisGrantToAutoScaling"]
    assert (grant["Principal"], grant["Action"]) == (shared, "kms:CreateGrant")
    role = "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/"
    assert grant["Condition"] == {
        "StringEquals": {"kms:GranteePrincipal": [role + "AWSServiceRoleForAutoScaling"]}
    }
    # And an environment that shares nothing names no other account in its key policy
    plain = Template.from_json(synthesized.template("phoenix-sandbox"))
    sids = {s.get("Sid") for s in _one(plain, "AWS::KMS::Key")["KeyPolicy"]["Statement"]}
    assert not sids & {"SharedAmisUseTheKey", "SharedAmisGrantToAutoScaling"}
