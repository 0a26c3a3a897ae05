"""A disaster recovery region releases on its own, in the embedded AWS: both regions of
tests/integration/config_dr/dr.yaml deployed with the CDK CLI, an image baked in the
primary as its pipeline bakes it (distributed to both regions), and the DR region's own
controller, which hears of the image through the primary's forwarding rule, releases
the DR region's copy of the AMI to the DR region's fleet."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import eventbridge
from local.cloudformation import aws_client
from local.embedded import ACCOUNT, EmbeddedAws
from phoenix.kernel.ledger import ROLLBACK_TARGET_TAG
from phoenix.kernel.names import image_name
from tests.integration.conftest import SharedSandbox

CONFIG = Path(__file__).resolve().parent / "config_dr"
ENVIRONMENT, FLEET = "dr", "worker"
PRIMARY, DR = "us-east-1", "us-west-2"


@pytest.fixture(scope="module")
def aws(
    tmp_path_factory: pytest.TempPathFactory, shared_sandbox: SharedSandbox
) -> Iterator[EmbeddedAws]:
    shared_sandbox.end()  # one embedded AWS per process at a time
    with EmbeddedAws(region=PRIMARY) as embedded:
        stacks = embedded.deploy(
            ENVIRONMENT, outdir=tmp_path_factory.mktemp("cdk.out"), config_dir=CONFIG
        )
        assert f"phoenix-{ENVIRONMENT}-{DR}" in stacks
        yield embedded


def bake(version: str) -> dict[str, str]:
    """CreateImage as the pipeline runs it (its recipe, infrastructure and distribution
    configuration, as deployed in the primary): the AMI it made in each region."""
    prefix = f"arn:aws:imagebuilder:{PRIMARY}:{ACCOUNT}"
    name = image_name(ENVIRONMENT, "golden")
    imagebuilder = aws_client("imagebuilder", PRIMARY)
    arn = imagebuilder.create_image(
        imageRecipeArn=f"{prefix}:image-recipe/{name}/{version}",
        infrastructureConfigurationArn=f"{prefix}:infrastructure-configuration/{name}",
        distributionConfigurationArn=f"{prefix}:distribution-configuration/{name}",
        tags={"phoenix:health": "healthy"},
    )["imageBuildVersionArn"]
    image = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]
    return {ami["region"]: ami["image"] for ami in image["outputResources"]["amis"]}


def settle(timeout: float = 300.0) -> None:
    """Wait (in real time) until every event is delivered and no execution runs, in
    both regions (EmbeddedAws.settle looks at its own region only)."""
    deadline = time.monotonic() + timeout
    while True:
        eventbridge.drain()
        running = [
            execution["executionArn"]
            for region in (PRIMARY, DR)
            for machine in aws_client("stepfunctions", region).list_state_machines()[
                "stateMachines"
            ]
            for execution in aws_client("stepfunctions", region).list_executions(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )["executions"]
        ]
        if not running:
            return
        assert time.monotonic() < deadline, f"executions still running: {running}"
        time.sleep(0.1)


def serving_amis(region: str) -> set[str]:
    """The AMIs of the fleet's in-service instances in `region`."""
    groups = aws_client("autoscaling", region).describe_auto_scaling_groups()
    ids = [
        instance["InstanceId"]
        for group in groups["AutoScalingGroups"]
        if group["AutoScalingGroupName"].startswith(f"phoenix-{ENVIRONMENT}-{FLEET}-")
        for instance in group["Instances"]
        if instance["LifecycleState"] == "InService"
    ]
    assert ids, f"no instances of {FLEET} in {region}"
    found = aws_client("ec2", region).describe_instances(InstanceIds=ids)["Reservations"]
    return {i["ImageId"] for r in found for i in r["Instances"]}


def releases(region: str) -> list[dict[str, Any]]:
    """The fleet's release items in `region`'s ledger."""
    dynamodb = aws_client("dynamodb", region)
    (table,) = dynamodb.list_tables()["TableNames"]
    items: list[dict[str, Any]] = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :fleet AND begins_with(sk, :release)",
        ExpressionAttributeValues={
            ":fleet": {"S": f"FLEET#{FLEET}"},
            ":release": {"S": "RELEASE#"},
        },
    )["Items"]
    return items


def test_the_dr_region_releases_its_own_copy_of_a_primary_image(aws: EmbeddedAws) -> None:
    # Given the DR fleet on its bootstrap AMI
    before = serving_amis(DR)

    # When the primary's pipeline bakes an image, distributed to both regions
    amis = bake("1.0.0")
    assert set(amis) == {PRIMARY, DR}
    settle()

    # Then the DR fleet runs the DR region's copy, its pointer names it, and the DR
    # region's ledger holds the release that put it there
    assert serving_amis(DR) == {amis[DR]} != before
    pointer = aws_client("ssm", DR).get_parameter(Name=f"/phoenix/{ENVIRONMENT}/{FLEET}/ami")
    assert pointer["Parameter"]["Value"] == amis[DR]
    (release,) = releases(DR)
    assert (release["to_ami"]["S"], release["outcome"]["S"]) == (amis[DR], "succeeded")
    # And the primary released its own copy, as it always did
    assert serving_amis(PRIMARY) == {amis[PRIMARY]}


def rollback_targets(region: str, amis: list[str]) -> list[bool]:
    """Whether each of `amis` (in `region`) carries the rollback-target tag."""
    found = aws_client("ec2", region).describe_images(ImageIds=amis)["Images"]
    tagged = {
        image["ImageId"]
        for image in found
        if any(t["Key"] == ROLLBACK_TARGET_TAG for t in image.get("Tags", []))
    }
    return [ami in tagged for ami in amis]


def test_each_region_tags_its_own_copy_while_its_fleet_serves_or_may_roll_back_to_it(
    aws: EmbeddedAws,
) -> None:
    # Given the DR fleet released 1.0.0 (the test before)
    (first,) = [r["to_ami"]["S"] for r in releases(DR)]

    # When two more images are baked and released in both regions, one after the other
    second = bake("1.0.1")
    settle()
    third = bake("1.0.2")
    settle()

    # Then in each region only its own copies of the AMI serving and the one before it
    # are kept in use (worker is rolling: no window keeps the one before that)
    assert serving_amis(DR) == {third[DR]}
    assert rollback_targets(DR, [first, second[DR], third[DR]]) == [False, True, True]
    assert rollback_targets(PRIMARY, [second[PRIMARY], third[PRIMARY]]) == [True, True]
