"""RunInstances in the embedded AWS refuses a subnet or security groups given beside the
network interfaces of its launch template, as the EC2 API reference says it must
(local/run_instances.py); the subnet goes in the interface instead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import install_extensions

REGION = "us-east-1"


@pytest.fixture
def world() -> Iterator[dict[str, Any]]:
    with mock_aws():
        install_extensions(None)
        ec2: Any = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
        ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        interface = {"DeviceIndex": 0, "AssociatePublicIpAddress": False, "Groups": [group]}
        template = ec2.create_launch_template(
            LaunchTemplateName="web",
            LaunchTemplateData={"ImageId": ami, "NetworkInterfaces": [interface]},
        )["LaunchTemplate"]["LaunchTemplateId"]
        yield {"ec2": ec2, "subnet": subnet, "group": group, "template": template, "nic": interface}


def _launch(world: dict[str, Any], **more: Any) -> Any:
    return world["ec2"].run_instances(
        LaunchTemplate={"LaunchTemplateId": world["template"], "Version": "1"},
        MinCount=1,
        MaxCount=1,
        **more,
    )


def test_a_subnet_beside_the_template_s_network_interfaces_is_refused(
    world: dict[str, Any],
) -> None:
    with pytest.raises(ClientError, match="InvalidParameterCombination") as refused:
        _launch(world, SubnetId=world["subnet"])
    assert "instance-level subnet ID" in str(refused.value)
    with pytest.raises(ClientError, match="InvalidParameterCombination"):
        _launch(world, SecurityGroupIds=[world["group"]])


def test_the_subnet_in_the_network_interface_launches_there(world: dict[str, Any]) -> None:
    launched = _launch(world, NetworkInterfaces=[{**world["nic"], "SubnetId": world["subnet"]}])
    assert launched["Instances"][0]["SubnetId"] == world["subnet"]
