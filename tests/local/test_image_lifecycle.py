"""Image Builder's lifecycle execution in the embedded AWS (local/imagebuilder/lifecycle.py),
run on the lifecycle policy phoenix synthesizes for the sandbox (keep_images: 3): the
newest images fill the retention slots before any exclusion is looked at; beyond them a
tagged or recently launched AMI is skipped and takes no slot; the rest are deregistered
with their snapshots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.utils import utcnow

from local import install_extensions
from local.imagebuilder import imagebuilder_backends, lifecycle
from phoenix.kernel.ledger import ROLLBACK_TARGET_TAG
from tests.conftest import SynthesizedApp

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}"
INFRASTRUCTURE = f"{PREFIX}:infrastructure-configuration/x"
MONTH = timedelta(days=31)


@pytest.fixture(scope="module")
def policy(synthesized: SynthesizedApp) -> dict[str, Any]:
    """The sandbox's lifecycle policy as synthesized; its role is any ARN here."""
    resources = synthesized.template("phoenix-sandbox")["Resources"]
    (found,) = (r for r in resources.values() if r["Type"] == "AWS::ImageBuilder::LifecyclePolicy")
    properties = dict(found["Properties"])
    properties["ExecutionRole"] = f"arn:aws:iam::{ACCOUNT}:role/lifecycle"
    return properties


@pytest.fixture
def world(policy: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with mock_aws():
        install_extensions(None)
        template = {
            "Resources": {
                "Lifecycle": {"Type": "AWS::ImageBuilder::LifecyclePolicy", "Properties": policy}
            }
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="images", TemplateBody=json.dumps(template)
        )
        yield policy


def _bake(policy: dict[str, Any], count: int, version: str | None = None) -> list[str]:
    (recipe,) = policy["ResourceSelection"]["Recipes"]
    arn = f"{PREFIX}:image-recipe/{recipe['Name']}/{version or recipe['SemanticVersion']}"
    imagebuilder: Any = boto3.client("imagebuilder", region_name=REGION)
    amis = []
    for _ in range(count):
        image = imagebuilder.create_image(
            imageRecipeArn=arn, infrastructureConfigurationArn=INFRASTRUCTURE
        )["imageBuildVersionArn"]
        (ami,) = imagebuilder.get_image(imageBuildVersionArn=image)["image"]["outputResources"][
            "amis"
        ]
        amis.append(str(ami["image"]))
    return amis


def _registered(amis: list[str]) -> list[bool]:
    ec2 = boto3.client("ec2", region_name=REGION)
    known = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    return [ami in known for ami in amis]


def _tag(ami: str) -> None:
    boto3.client("ec2", region_name=REGION).create_tags(
        Resources=[ami], Tags=[{"Key": ROLLBACK_TARGET_TAG, "Value": "true"}]
    )


def test_the_newest_fill_the_slots_and_a_tagged_ami_beyond_them_takes_none(
    world: dict[str, Any],
) -> None:
    # Given five images of the recipe version, the oldest and the newest tagged
    amis = _bake(world, 5)
    _tag(amis[0])
    _tag(amis[4])
    snapshots = boto3.client("ec2", region_name=REGION).describe_snapshots(OwnerIds=["self"])

    # When the policy runs a month later (nothing launched from them since)
    (execution,) = lifecycle.run(ACCOUNT, REGION, utcnow() + MONTH)

    # Then the newest three are kept by count, the tagged newest among them (its tag
    # spares no fourth), and the tagged oldest is skipped: only the second goes
    assert execution.kept[REGION] == set(amis[2:])
    assert execution.excluded[REGION] == {amis[0]}
    assert execution.deregistered[REGION] == {amis[1]}
    assert _registered(amis) == [True, False, True, True, True]
    left = boto3.client("ec2", region_name=REGION).describe_snapshots(OwnerIds=["self"])
    assert len(left["Snapshots"]) == len(snapshots["Snapshots"]) - 1
    images = boto3.client("imagebuilder", region_name=REGION)
    assert len(execution.deleted_images) == 1
    for arn in execution.deleted_images:
        with pytest.raises(images.exceptions.ClientError, match="ResourceNotFoundException"):
            images.get_image(imageBuildVersionArn=arn)


def test_an_ami_launched_within_thirty_days_is_skipped_and_not_after(
    world: dict[str, Any],
) -> None:
    # Given five images, an instance launched from the oldest today
    amis = _bake(world, 5)
    boto3.client("ec2", region_name=REGION).run_instances(
        ImageId=amis[0], MinCount=1, MaxCount=1, InstanceType="t4g.micro"
    )

    # When the policy runs today, the launch keeps the oldest
    lifecycle.run(ACCOUNT, REGION, utcnow())
    assert _registered(amis) == [True, False, True, True, True]

    # and a month later it no longer does
    lifecycle.run(ACCOUNT, REGION, utcnow() + MONTH)
    assert _registered(amis) == [False, False, True, True, True]


def test_only_the_recipe_version_the_policy_selects_is_counted(world: dict[str, Any]) -> None:
    # Given four images of another version of the recipe and one of the selected version
    others = _bake(world, 4, version="9.9.9")
    selected = _bake(world, 1)

    # When the policy runs a month later
    lifecycle.run(ACCOUNT, REGION, utcnow() + MONTH)

    # Then nothing goes: the selected version has one image, the other is not selected
    assert _registered([*others, *selected]) == [True] * 5


def test_a_rule_the_emulation_does_not_know_is_refused(world: dict[str, Any]) -> None:
    # Given the policy with an exclusion rule phoenix does not set
    details = json.loads(json.dumps(world["PolicyDetails"]))
    details[0]["ExclusionRules"]["Amis"]["IsPublic"] = True
    backend = imagebuilder_backends[ACCOUNT][REGION]
    (arn,) = (a for a in backend.resources if ":lifecycle-policy/" in a)
    backend.resources[arn] = {**world, "PolicyDetails": details}
    amis = _bake(world, 5)

    # When it runs, the emulation says so rather than guess, and deletes nothing
    with pytest.raises(ValueError, match="not emulated: IsPublic"):
        lifecycle.run(ACCOUNT, REGION, utcnow() + MONTH)
    assert _registered(amis) == [True] * 5
