"""What the instance refresh tests share: a world in the embedded AWS, with a group of
four instances on version 1 of a launch template (version 2 launches another AMI) and a
queue receiving the `aws.autoscaling` events, and the calls the tests make in it.

A test module imports `world_fixture` for the `world` fixture. Each `advance(seconds)` is
one step of the emulated refresh: a batch launches in one step and its new instances are
found healthy (and what they replace terminated) in the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import install_extensions
from local.imagebuilder.models import HEALTH_TAG
from tests.local.eventbus import EventQueue

# Two of moto's AMIs, found by name: listing all 1,300 costs seconds per test.
ANY_TWO_AMIS: Any = [{"Name": "name", "Values": ["al2023-ami-2023*-arm64"]}]
REGION = "us-east-1"
GROUP = "phoenix-t-worker-blue"
ALARM = "phoenix-t-worker-5xx-rate"
PREFIX = "EC2 Auto Scaling Instance Refresh "
AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]


@dataclass(frozen=True)
class World:
    autoscaling: Any
    template_id: str
    old_image: str
    new_image: str
    events_queue: EventQueue

    def images(self) -> list[str]:
        (group,) = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
            "AutoScalingGroups"
        ]
        ids = [i["InstanceId"] for i in group["Instances"]]
        if not ids:
            return []
        reservations = boto3.client("ec2", region_name=REGION).describe_instances(InstanceIds=ids)[
            "Reservations"
        ]
        return [i["ImageId"] for r in reservations for i in r["Instances"]]

    def counts(self) -> tuple[int, int]:
        """Instances in the group on the old and on the new AMI."""
        images = self.images()
        return images.count(self.old_image), images.count(self.new_image)

    def refresh(self) -> dict[str, Any]:
        refreshes = self.autoscaling.describe_instance_refreshes(AutoScalingGroupName=GROUP)
        return dict(refreshes["InstanceRefreshes"][0])

    def status(self) -> str:
        return str(self.refresh()["Status"])

    def events(self) -> list[dict[str, Any]]:
        return self.events_queue.received()

    def kinds(self) -> list[str]:
        return [e["detail-type"].removeprefix(PREFIX) for e in self.events()]

    def group(self, **settings: Any) -> None:
        self.autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, **settings)


@pytest.fixture(name="world")
def world_fixture() -> Iterator[World]:
    with mock_aws():
        install_extensions(None)
        ec2 = boto3.client("ec2", region_name=REGION)
        images = ec2.describe_images(Filters=ANY_TWO_AMIS)["Images"]
        old_image, new_image = [i["ImageId"] for i in images[:2]]
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
        template = ec2.create_launch_template(
            LaunchTemplateName="worker", LaunchTemplateData={"ImageId": old_image}
        )["LaunchTemplate"]["LaunchTemplateId"]
        ec2.create_launch_template_version(
            LaunchTemplateId=template, LaunchTemplateData={"ImageId": new_image}
        )
        autoscaling = boto3.client("autoscaling", region_name=REGION)
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=GROUP,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
            MinSize=4,
            MaxSize=8,
            DesiredCapacity=4,
            VPCZoneIdentifier=subnet,
        )
        queue = EventQueue.for_pattern("refresh", {"source": ["aws.autoscaling"]})
        yield World(autoscaling, template, old_image, new_image, queue)


def start_refresh_exactly(world: World, preferences: dict[str, Any]) -> str:
    response = world.autoscaling.start_instance_refresh(
        AutoScalingGroupName=GROUP,
        DesiredConfiguration={
            "LaunchTemplate": {"LaunchTemplateId": world.template_id, "Version": "2"}
        },
        Preferences=preferences,
    )
    return str(response["InstanceRefreshId"])


def start_refresh(world: World, **preferences: Any) -> str:
    """Launch before terminate (100 / 200 percent, as phoenix's rolling fleets)."""
    return start_refresh_exactly(
        world, {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, **preferences}
    )


def put_alarm(state: AlarmState = "OK") -> Any:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        MetricName="m",
        Namespace="n",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Statistic="Sum",
    )
    if state != "OK":
        cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue=state, StateReason="test")
    return cloudwatch


def fail_health_checks(world: World, image: str) -> None:
    """ELB health checks on the group, and `image` failing them (local.application)."""
    world.group(HealthCheckType="ELB", HealthCheckGracePeriod=0)
    boto3.client("ec2", region_name=REGION).create_tags(
        Resources=[image], Tags=[{"Key": HEALTH_TAG, "Value": "failing"}]
    )


def client_error(call: Any, **arguments: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**arguments)
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]
