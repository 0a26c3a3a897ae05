"""Image Builder in the embedded AWS: CreateImage bakes, GetImage reads, the event announces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import install_extensions
from tests.local.eventbus import EventQueue
from tests.sample_events import sample_event

REGION = "us-east-1"
ACCOUNT = "123456789012"
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
    sample = sample_event("imagebuilder_image_available")
    assert event["source"] == sample["source"]
    assert event["detail-type"] == sample["detail-type"]
    assert event["detail"] == sample["detail"]
    assert event["resources"] == [arn]


def _deployed_distribution(regions: list[Any]) -> str:
    """A distribution configuration deployed from a template, as the pipeline's is."""
    template = {
        "Resources": {
            "Distribution": {
                "Type": "AWS::ImageBuilder::DistributionConfiguration",
                "Properties": {
                    "Name": "phoenix-sandbox-golden",
                    "Distributions": [
                        {
                            "Region": region,
                            "AmiDistributionConfiguration": {"AmiTags": {"copy": str(n)}},
                        }
                        for n, region in enumerate(regions)
                    ],
                },
            }
        },
        "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Distribution", "Arn"]}}},
    }
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName="images", TemplateBody=json.dumps(template))
    (stack,) = cloudformation.describe_stacks(StackName="images")["Stacks"]
    return str(stack["Outputs"][0]["OutputValue"])


def test_an_image_has_an_ami_in_each_region_its_distribution_names(imagebuilder: Any) -> None:
    # Given a distribution configuration to this region and another
    distribution = _deployed_distribution([{"Ref": "AWS::Region"}, "us-west-2"])

    # When an image is created with it
    arn = imagebuilder.create_image(
        imageRecipeArn=RECIPE,
        infrastructureConfigurationArn=INFRASTRUCTURE,
        distributionConfigurationArn=distribution,
        tags={"phoenix:health": "erroring"},
    )["imageBuildVersionArn"]

    # Then GetImage lists one AMI per region, each registered in its own region's EC2
    # with the image's health and its distribution's AMI tags, and in no other
    amis = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]["outputResources"]["amis"]
    by_region = {ami["region"]: ami["image"] for ami in amis}
    assert list(by_region) == [REGION, "us-west-2"]
    for n, (region, ami) in enumerate(by_region.items()):
        ec2 = boto3.client("ec2", region_name=region)
        (described,) = ec2.describe_images(ImageIds=[ami])["Images"]
        tags = {t["Key"]: t["Value"] for t in described["Tags"]}
        assert (tags["phoenix:health"], tags["copy"]) == ("erroring", str(n))
        (other,) = set(by_region.values()) - {ami}
        assert (
            ec2.describe_images(Filters=[{"Name": "image-id", "Values": [other]}])["Images"] == []
        )


def test_an_unknown_distribution_configuration_is_refused(imagebuilder: Any) -> None:
    with pytest.raises(ClientError) as raised:
        imagebuilder.create_image(
            imageRecipeArn=RECIPE,
            infrastructureConfigurationArn=INFRASTRUCTURE,
            distributionConfigurationArn=f"{INFRASTRUCTURE.rsplit(':', 1)[0]}:"
            "distribution-configuration/nowhere",
        )
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


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
