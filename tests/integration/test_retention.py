"""AMI retention that knows what is in use, in the embedded AWS: after five releases the
`phoenix:rollback-target` tag is on exactly the golden AMIs in use (a release pointer, a
launch template version a group uses, an instance, the previous good AMI or a rollback
window's), and Image Builder's lifecycle execution (local/imagebuilder/lifecycle.py), run
a month later, keeps exactly those plus the newest `keep_images`: nothing in use is
deregistered (docs/adr/0016-rollback-drills-and-retention.md)."""

from __future__ import annotations

from datetime import timedelta

from local.embedded import ACCOUNT, EmbeddedAws
from local.fleet_view import FleetView, release_item
from local.imagebuilder import imagebuilder_backends
from phoenix.kernel.names import image_name
from tests.integration.test_rollback_targets import tagged

FLEETS = ("web", "api", "worker")
KEEP_IMAGES = 3  # tests/integration/config/sandbox.yaml's golden pipeline
# Past the lifecycle's 30-day last-launch exclusion: only the tag protects what serves.
A_MONTH = timedelta(days=31)


def _golden(aws: EmbeddedAws) -> list[str]:
    """The golden pipeline's AMIs of this region, oldest first (its recipe version 1.0.0)."""
    images = imagebuilder_backends[ACCOUNT][aws.region].images.values()
    name = image_name("sandbox", "golden")
    mine = [i for i in images if i.name == name and i.version == "1.0.0"]
    return [i.ami_id for i in sorted(mine, key=lambda i: i.created)]


def _in_use(aws: EmbeddedAws) -> set[str]:
    """What the fleets use, read from AWS: pointers, the launch template versions of every
    group (idle ones too), instances; and from the ledger, the previous good AMI and a
    rollback window's."""
    used: set[str] = set()
    ec2 = aws.client("ec2")
    for group in aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]:
        template = group["LaunchTemplate"]
        (version,) = ec2.describe_launch_template_versions(
            LaunchTemplateId=template["LaunchTemplateId"], Versions=[template["Version"]]
        )["LaunchTemplateVersions"]
        used.add(version["LaunchTemplateData"]["ImageId"])
        ids = [i["InstanceId"] for i in group["Instances"]]
        for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []:
            used |= {i["ImageId"] for i in reservation["Instances"]}
    for fleet in FLEETS:
        view = FleetView.read(aws, fleet)
        item = view.fleet_item
        window = item.get("warm_slot", {}).get("M", {}).get("previous_ami", {}).get("S")
        used |= {view.pointer, item.get("previous_good_ami", {}).get("S", ""), window or ""}
    return used - {""}


def _registered(aws: EmbeddedAws, amis: set[str]) -> set[str]:
    images = aws.client("ec2").describe_images(Owners=["self"])["Images"]
    return {i["ImageId"] for i in images} & amis


def _release(aws: EmbeddedAws, fleet: str, ami: str) -> None:
    aws.advance(300)  # an earlier test's alarms recover with a few minutes of good traffic
    execution = aws.request_release(fleet, ami, requested_by="tests")
    assert execution["status"] == "SUCCEEDED", release_item(aws, fleet, execution["name"])


def test_after_five_releases_the_lifecycle_keeps_what_is_in_use_and_the_newest(
    aws: EmbeddedAws,
) -> None:
    # Given six golden images, baked while every fleet was paused (the releases their
    # AVAILABLE events start are refused), then the fleets resumed
    for fleet in FLEETS:
        aws.put("Releases Paused", {"fleet": fleet, "requested_by": "tests", "reason": "bakes"})
    baked = [aws.bake(pipeline="golden").ami for _ in range(6)]
    aws.settle()
    for fleet in FLEETS:
        aws.put("Releases Resumed", {"fleet": fleet, "requested_by": "tests", "reason": ""})

    # When api releases the first two and worker the third, fourth and sixth
    for fleet, ami in [("api", 0), ("api", 1), ("worker", 2), ("worker", 3), ("worker", 5)]:
        _release(aws, fleet, baked[ami])

    # Then the tag is on exactly the golden AMIs in use
    golden = _golden(aws)
    in_use = _in_use(aws)
    assert {baked[0], baked[1], baked[3], baked[5]} <= in_use
    assert {baked[2], baked[4]}.isdisjoint(in_use)
    assert tagged(aws, golden) == in_use & set(golden)

    # And the lifecycle, a month later, keeps those and the newest three, and no more
    aws.run_image_lifecycle(later=A_MONTH)
    assert _registered(aws, set(golden)) == (in_use & set(golden)) | set(golden[-KEEP_IMAGES:])
    assert baked[2] not in _registered(aws, set(golden))
    found = aws.client("ec2").describe_images(ImageIds=sorted(in_use))["Images"]
    assert {i["ImageId"] for i in found} == in_use  # (the fleets' first AMIs too)
