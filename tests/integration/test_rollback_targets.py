"""Rollback-target tags in the embedded AWS: after each release, exactly the AMIs some
fleet of the environment serves or may roll back to carry `phoenix:rollback-target`, so
the image lifecycle keeps those and may delete the rest (docs/adr/0008-rollback-target-tags.md,
docs/adr/0016-rollback-drills-and-retention.md)."""

from __future__ import annotations

from pathlib import Path

from local.embedded import EmbeddedAws
from local.fleet_view import FleetView, release_item
from phoenix.kernel.ledger import ROLLBACK_TARGET_TAG
from tests.integration.fleet_view import request_release

CONFIG = Path(__file__).resolve().parent / "config"


def tagged(aws: EmbeddedAws, amis: list[str]) -> set[str]:
    """Which of `amis` carry the rollback-target tag, as DescribeImages and DescribeTags
    both say (the lifecycle policy reads the AMI's own tags)."""
    images = aws.client("ec2").describe_images(ImageIds=amis)["Images"]
    by_image = {
        image["ImageId"]
        for image in images
        if {"Key": ROLLBACK_TARGET_TAG, "Value": "true"} in image.get("Tags", [])
    }
    described = aws.client("ec2").describe_tags(
        Filters=[
            {"Name": "resource-id", "Values": amis},
            {"Name": "key", "Values": [ROLLBACK_TARGET_TAG]},
        ]
    )["Tags"]
    assert by_image == {t["ResourceId"] for t in described if t["Value"] == "true"}
    return by_image


def _release(aws: EmbeddedAws, fleet: str, ami: str) -> None:
    execution = request_release(aws, fleet, ami)
    assert execution["status"] == "SUCCEEDED", release_item(aws, fleet, execution["name"])
    assert FleetView.read(aws, fleet).pointer == ami


def test_after_three_releases_only_the_serving_ami_and_the_one_before_are_tagged(
    aws: EmbeddedAws,
) -> None:
    # Given the canary fleet on the AMI it was deployed with, and three healthy images
    first = FleetView.read(aws, "web").pointer
    baked = [aws.bake(pipeline="scratch", version=f"7.0.{n}").ami for n in (1, 2, 3)]

    # When each is released in turn (each release's rollback window ends before the next)
    for ami in baked:
        _release(aws, "web", ami)

    # Then the AMI serving and the one before it, and only those, are kept in use
    item = FleetView.read(aws, "web").fleet_item
    assert item["previous_good_ami"]["S"] == baked[1]
    assert tagged(aws, [first, *baked]) == {baked[1], baked[2]}


def test_an_ami_stays_tagged_while_another_fleet_may_still_roll_back_to_it(
    aws: EmbeddedAws,
) -> None:
    # Given two fleets that served the same AMI (`shared`) and both moved on from it
    shared, common, later = (
        aws.bake(pipeline="scratch", version=f"8.0.{n}").ami for n in (1, 2, 3)
    )
    for fleet in ("web", "api"):
        _release(aws, fleet, shared)
        _release(aws, fleet, common)
    assert tagged(aws, [shared]) == {shared}

    # When one of them moves on again, its rollback target is no longer `shared`
    _release(aws, "web", later)

    # Then `shared` keeps its tag: the other fleet would still roll back to it
    assert tagged(aws, [shared, common, later]) == {shared, common, later}

    # and loses it only once no fleet names it any more
    _release(aws, "api", later)
    assert tagged(aws, [shared, common, later]) == {common, later}
