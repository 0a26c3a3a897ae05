"""A `cdk deploy` that changes a launch template goes out with the next release: the
release's launch template version is based on the version that deploy made, not on the
one the group runs (docs/release.md, Prepare)."""

from __future__ import annotations

from pathlib import Path

import yaml

from local.embedded import EmbeddedAws
from local.fleet_view import FleetView, release_item
from tests.integration.conftest import CONFIG
from tests.integration.fleet_view import request_release


def _instance_types(aws: EmbeddedAws, group: str) -> set[str]:
    (found,) = aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group]
    )["AutoScalingGroups"]
    ids = [i["InstanceId"] for i in found["Instances"]]
    reservations = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceType"] for r in reservations for i in r["Instances"]}


def test_a_deploy_that_changes_the_instance_type_reaches_instances_with_the_next_release(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    # Given the rolling fleet released once, on the configured instance type
    aws.advance(300)
    first = aws.bake(pipeline="scratch", version="5.0.0")
    assert request_release(aws, "worker", first.ami)["status"] == "SUCCEEDED"
    group = "phoenix-sandbox-worker-blue"
    assert _instance_types(aws, group) == {"t4g.small"}

    # When a deploy changes its instance type (the launch template gets a new version)
    config = yaml.safe_load((CONFIG / "sandbox.yaml").read_text())
    for fleet in config["fleets"]:
        if fleet["name"] == "worker":
            fleet["instance_type"] = "t4g.medium"
    changed = tmp_path / "config"
    changed.mkdir()
    (changed / "sandbox.yaml").write_text(yaml.safe_dump(config))
    aws.deploy("sandbox", outdir=tmp_path / "cdk.out", config_dir=changed)
    # ...which changes nothing serving by itself (a deploy never reaches instances)
    assert _instance_types(aws, group) == {"t4g.small"}

    # Then the next release replaces every instance with the new type and the new AMI
    second = aws.bake(pipeline="scratch", version="5.0.1")
    execution = request_release(aws, "worker", second.ami)
    assert execution["status"] == "SUCCEEDED", release_item(aws, "worker", execution["name"])
    assert _instance_types(aws, group) == {"t4g.medium"}
    assert FleetView.read(aws, "worker").serving_amis == {second.ami}
