"""Image Builder in the embedded AWS: CreateImage bakes, GetImage reads, the event announces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import install_extensions
from tests.local.eventbus import EventQueue

REGION = "us-east-1"
ACCOUNT = "123456789012"
EVENTS = Path(__file__).resolve().parents[1] / "events"
RECIPE = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image-recipe/phoenix-sandbox-golden/1.2.0"
INFRASTRUCTURE = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:infrastructure-configuration/x"


@pytest.fixture
def imagebuilder() -> Iterator[Any]:
    with mock_aws():
        install_extensions(None)
        yield boto3.client("imagebuilder", region_name=REGION)


def _events_queue() -> EventQueue:
    return EventQueue.for_pattern(
        "images",
        {
            "source": ["aws.imagebuilder"],
            "detail-type": ["EC2 Image Builder Image State Change"],
            "detail": {"state": {"status": ["AVAILABLE"]}},
        },
    )


def test_a_bake_registers_an_ami_tagged_with_its_health_and_announces_it(imagebuilder: Any) -> None:
    # Given a rule for AVAILABLE images, like the release trigger's
    queue = _events_queue()

    # When an image is created with a failing health profile
    arn = imagebuilder.create_image(
        imageRecipeArn=RECIPE,
        infrastructureConfigurationArn=INFRASTRUCTURE,
        tags={"phoenix:health": "failing"},
    )["imageBuildVersionArn"]

    # Then GetImage names the AMI it produced in this region
    image = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]
    assert image["state"] == {"status": "AVAILABLE"}
    assert image["version"] == "1.2.0"
    (ami,) = image["outputResources"]["amis"]
    assert ami["region"] == REGION
    described = boto3.client("ec2", region_name=REGION).describe_images(ImageIds=[ami["image"]])
    tags = {t["Key"]: t["Value"] for t in described["Images"][0]["Tags"]}
    assert tags["phoenix:health"] == "failing"

    # And the AVAILABLE event arrives shaped like AWS's
    (event,) = queue.received()
    sample = json.loads((EVENTS / "imagebuilder_image_available.json").read_text())
    assert event["source"] == sample["source"]
    assert event["detail-type"] == sample["detail-type"]
    assert event["detail"] == sample["detail"]
    assert event["resources"] == [arn]


def test_each_build_of_a_version_gets_its_own_arn(imagebuilder: Any) -> None:
    arns = [
        imagebuilder.create_image(
            imageRecipeArn=RECIPE, infrastructureConfigurationArn=INFRASTRUCTURE
        )["imageBuildVersionArn"]
        for _ in range(2)
    ]
    assert [a.rsplit("/", 2)[1:] for a in arns] == [["1.2.0", "1"], ["1.2.0", "2"]]


def test_get_image_refuses_unknown_and_malformed_arns(imagebuilder: Any) -> None:
    missing = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/phoenix-sandbox-golden/9.9.9/1"
    with pytest.raises(ClientError) as raised:
        imagebuilder.get_image(imageBuildVersionArn=missing)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as raised:
        imagebuilder.get_image(imageBuildVersionArn="not-an-arn")
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_an_unknown_health_profile_is_refused(imagebuilder: Any) -> None:
    with pytest.raises(ClientError) as raised:
        imagebuilder.create_image(
            imageRecipeArn=RECIPE,
            infrastructureConfigurationArn=INFRASTRUCTURE,
            tags={"phoenix:health": "sparkling"},
        )
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValueException"
