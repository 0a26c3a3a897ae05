"""A `cdk deploy` that changes a launch template goes out as a release of the fleet's
current AMI, with its strategy, gates and rollback (docs/release.md, Deploys); fleets
whose templates the deploy left alone get no release."""

from __future__ import annotations

from pathlib import Path

import yaml

from local.embedded import EmbeddedAws
from local.fleet_view import FleetView, ledger_item, release_item
from tests.integration.conftest import CONFIG
from tests.integration.fleet_view import request_release


def _instance_types(aws: EmbeddedAws, group: str) -> set[str]:
    (found,) = aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group]
    )["AutoScalingGroups"]
    ids = [i["InstanceId"] for i in found["Instances"]]
    reservations = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceType"] for r in reservations for i in r["Instances"]}


def _group_versions(aws: EmbeddedAws) -> dict[str, str]:
    groups = aws.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: g["LaunchTemplate"]["Version"] for g in groups}


def test_a_deploy_that_changes_the_instance_type_releases_it_on_the_current_ami(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    # Given the rolling fleet released once, on the configured instance type
    aws.advance(300)
    first = aws.bake(pipeline="scratch", version="5.0.0")
    assert request_release(aws, "worker", first.ami)["status"] == "SUCCEEDED"
    group = "phoenix-sandbox-worker-blue"
    assert _instance_types(aws, group) == {"t4g.small"}
    versions = _group_versions(aws)
    before = set(aws.executions())

    # When a deploy changes its instance type (the launch template gets a new version)
    config = yaml.safe_load((CONFIG / "sandbox.yaml").read_text())
    for fleet in config["fleets"]:
        if fleet["name"] == "worker":
            fleet["instance_type"] = "t4g.medium"
    changed = tmp_path / "config"
    changed.mkdir()
    (changed / "sandbox.yaml").write_text(yaml.safe_dump(config))
    aws.deploy("sandbox", outdir=tmp_path / "cdk.out", config_dir=changed)
    aws.settle()

    # Then the deploy's end started one release per fleet, and only the worker's went out:
    # every instance replaced with the new type, on the AMI it already ran
    started = {e["name"]: e for arn, e in aws.executions().items() if arn not in before}
    by_fleet = {name.split("-", 1)[0]: execution for name, execution in started.items()}
    assert sorted(by_fleet) == ["api", "web", "worker"]
    assert {e["status"] for e in by_fleet.values()} == {"SUCCEEDED"}
    worker = by_fleet["worker"]["name"]
    assert release_item(aws, "worker", worker)["outcome"] == "succeeded"
    item = ledger_item(aws, "FLEET#worker", f"RELEASE#{worker}")
    assert item["trigger"]["S"] == "deploy of phoenix-sandbox"
    assert _instance_types(aws, group) == {"t4g.medium"}
    assert FleetView.read(aws, "worker").serving_amis == {first.ami}
    assert versions[group] != _group_versions(aws)[group]

    # ...and the others ended at once: nothing recorded, nothing moved
    for fleet in ("api", "web"):
        assert ledger_item(aws, f"FLEET#{fleet}", f"RELEASE#{by_fleet[fleet]['name']}") == {}
    now = _group_versions(aws)
    assert {g: v for g, v in now.items() if "worker" not in g} == {
        g: v for g, v in versions.items() if "worker" not in g
    }
