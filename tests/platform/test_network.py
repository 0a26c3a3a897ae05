"""An existing VPC is imported from its ids alone; nothing is looked up at synthesis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from app import add_environments, cli_context, new_app
from phoenix.config.environment import EnvironmentConfig

VPC = "vpc-0123456789abcdef0"
PUBLIC = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
PRIVATE = ["subnet-0000000000000000c", "subnet-0000000000000000d"]


@pytest.fixture(scope="module")
def imported(
    tmp_path_factory: pytest.TempPathFactory, environment_configs: dict[str, EnvironmentConfig]
) -> tuple[Path, dict[str, Any]]:
    # Given the sandbox pointed at an existing VPC, bound to a region and account
    raw = environment_configs["sandbox"].model_dump(mode="json")
    raw |= {"region": "eu-west-1", "account": "111122223333"}
    raw["network"] |= {"vpc_id": VPC, "public_subnet_ids": PUBLIC, "private_subnet_ids": PRIVATE}
    outdir = tmp_path_factory.mktemp("cdk.out.imported")
    app = new_app(outdir=str(outdir), context=cli_context())
    add_environments(app, [EnvironmentConfig.model_validate(raw)])
    assembly = app.synth()
    (artifact,) = [a for a in assembly.stacks_recursively if a.stack_name == "phoenix-sandbox"]
    return outdir, artifact.template


def test_no_context_lookup_is_needed(imported: tuple[Path, dict[str, Any]]) -> None:
    outdir, _ = imported
    for manifest in outdir.rglob("manifest.json"):
        assert "missing" not in json.loads(manifest.read_text())


def test_the_vpc_is_used_not_created_and_its_flows_are_logged(
    imported: tuple[Path, dict[str, Any]],
) -> None:
    template = Template.from_json(imported[1])
    template.resource_count_is("AWS::EC2::VPC", 0)
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"ResourceId": VPC, "ResourceType": "VPC", "TrafficType": "ALL"}
    )


def test_instances_use_the_private_subnets_and_the_load_balancer_the_public_ones(
    imported: tuple[Path, dict[str, Any]],
) -> None:
    template = Template.from_json(imported[1])
    for group in template.find_resources("AWS::AutoScaling::AutoScalingGroup").values():
        assert group["Properties"]["VPCZoneIdentifier"] == PRIVATE
    (balancer,) = template.find_resources("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert balancer["Properties"]["Subnets"] == PUBLIC
