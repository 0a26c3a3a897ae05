"""Instance refresh in the embedded AWS, against the behaviour the AWS documentation gives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import install_extensions
from local.instance_refresh_clock import advance
from tests.local.eventbus import EventQueue

REGION = "us-east-1"
GROUP = "phoenix-t-worker-blue"


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
        reservations = boto3.client("ec2", region_name=REGION).describe_instances(InstanceIds=ids)[
            "Reservations"
        ]
        return [i["ImageId"] for r in reservations for i in r["Instances"]]

    def refresh(self) -> dict[str, Any]:
        refreshes = self.autoscaling.describe_instance_refreshes(AutoScalingGroupName=GROUP)
        return dict(refreshes["InstanceRefreshes"][0])

    def events(self) -> list[dict[str, Any]]:
        return self.events_queue.received()


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        install_extensions(None)
        ec2 = boto3.client("ec2", region_name=REGION)
        old_image, new_image = [i["ImageId"] for i in ec2.describe_images()["Images"][:2]]
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


def _start(world: World, **preferences: Any) -> str:
    response = world.autoscaling.start_instance_refresh(
        AutoScalingGroupName=GROUP,
        DesiredConfiguration={
            "LaunchTemplate": {"LaunchTemplateId": world.template_id, "Version": "2"}
        },
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200, **preferences},
    )
    return str(response["InstanceRefreshId"])


def test_launch_before_terminate_with_a_checkpoint(world: World) -> None:
    # Given a refresh to version 2 that pauses half way
    refresh_id = _start(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)

    # When time passes, then half the instances are replaced and it waits at the checkpoint
    advance(60)
    state = world.refresh()
    assert (state["InstanceRefreshId"], state["Status"]) == (refresh_id, "InProgress")
    assert (state["PercentageComplete"], state["InstancesToUpdate"]) == (50, 2)
    assert sorted(world.images()) == sorted([world.old_image] * 2 + [world.new_image] * 2)
    advance(300)  # still inside the checkpoint delay
    assert world.refresh()["PercentageComplete"] == 50

    # And after the delay it finishes, never below the desired capacity
    advance(300)
    advance(60)
    advance(60)
    assert world.refresh()["Status"] == "Successful"
    assert world.images() == [world.new_image] * 4
    kinds = [
        e["detail-type"].removeprefix("EC2 Auto Scaling Instance Refresh ") for e in world.events()
    ]
    assert kinds == ["Started", "Checkpoint Reached", "Succeeded"]


def test_a_last_checkpoint_below_100_ends_the_refresh_successful_there(world: World) -> None:
    # Given a refresh whose last checkpoint is 50: AWS replaces that much of the group
    # (the API reference: to replace all instances the last number must be 100)
    _start(world, CheckpointPercentages=[20, 50], CheckpointDelay=600)

    # When time passes: one instance (25%, past 20) and the delay, then a second (50%)
    advance(60)
    assert (world.refresh()["Status"], world.refresh()["PercentageComplete"]) == ("InProgress", 25)
    advance(600)
    advance(60)
    advance(60)
    advance(600)  # and nothing more happens however long it waits

    # Then it ended Successful at 50%, half the instances still on launch template
    # version 1 (its AMI; moto reports every instance's version as the template's default)
    state = world.refresh()
    assert (state["Status"], state["PercentageComplete"], state["InstancesToUpdate"]) == (
        "Successful",
        50,
        0,
    )
    assert sorted(world.images()) == sorted([world.old_image] * 2 + [world.new_image] * 2)
    events = world.events()
    kinds = [e["detail-type"].removeprefix("EC2 Auto Scaling Instance Refresh ") for e in events]
    assert kinds == ["Started", "Checkpoint Reached", "Succeeded"]  # no pause at the last one
    assert events[1]["detail"]["CheckpointPercentage"] == "20"


def test_the_checkpoint_event_carries_percentage_and_delay_as_aws_sends_them(world: World) -> None:
    _start(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)
    advance(60)
    started, checkpoint = world.events()
    assert checkpoint["source"] == "aws.autoscaling"
    assert checkpoint["detail"]["AutoScalingGroupName"] == GROUP
    assert checkpoint["detail"]["CheckpointPercentage"] == "50"
    assert checkpoint["detail"]["CheckpointDelay"] == "600"
    assert set(started["detail"]) == {"InstanceRefreshId", "AutoScalingGroupName"}
    assert checkpoint["resources"][0].startswith("arn:aws:autoscaling:")


def test_bake_time_holds_the_refresh_before_success(world: World) -> None:
    _start(world, BakeTime=120)
    advance(60)
    advance(60)
    assert world.refresh()["Status"] == "Baking"
    advance(60)
    advance(60)
    assert world.refresh()["Status"] == "Successful"


def test_rollback_returns_every_replaced_instance_to_the_previous_version(world: World) -> None:
    _start(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)
    advance(60)
    world.autoscaling.rollback_instance_refresh(AutoScalingGroupName=GROUP)
    assert world.refresh()["Status"] == "RollbackInProgress"
    advance(60)
    advance(60)
    state = world.refresh()
    assert state["Status"] == "RollbackSuccessful"
    assert state["RollbackDetails"]["RollbackReason"]
    assert world.images() == [world.old_image] * 4
    (group,) = world.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    assert group["LaunchTemplate"]["Version"] == "1"
    kinds = [
        e["detail-type"].removeprefix("EC2 Auto Scaling Instance Refresh ") for e in world.events()
    ]
    assert kinds[-2:] == ["Rollback Started", "Rollback Succeeded"]


def test_auto_rollback_follows_an_alarm(world: World) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName="phoenix-t-worker-5xx-rate",
        MetricName="m",
        Namespace="n",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Statistic="Sum",
    )
    _start(
        world,
        AutoRollback=True,
        AlarmSpecification={"Alarms": ["phoenix-t-worker-5xx-rate"]},
        CheckpointPercentages=[50, 100],
        CheckpointDelay=600,
    )
    advance(60)
    cloudwatch.set_alarm_state(
        AlarmName="phoenix-t-worker-5xx-rate", StateValue="ALARM", StateReason="errors"
    )
    advance(60)
    state = world.refresh()
    assert state["Status"] == "RollbackInProgress"
    assert "phoenix-t-worker-5xx-rate" in state["StatusReason"]


def test_cancel_stops_it_where_it_is(world: World) -> None:
    _start(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)
    advance(60)
    world.autoscaling.cancel_instance_refresh(AutoScalingGroupName=GROUP)
    advance(600)
    assert world.refresh()["Status"] == "Cancelled"
    assert sorted(world.images()).count(world.new_image) == 2


def _error(call: Any, **arguments: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**arguments)
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def test_requests_aws_refuses_are_refused(world: World) -> None:
    start = world.autoscaling.start_instance_refresh
    code, message = _error(
        start, AutoScalingGroupName=GROUP, Preferences={"MaxHealthyPercentage": 150}
    )
    assert (code, "MinHealthyPercentage") == ("ValidationError", message.split()[3])
    code, _ = _error(
        start,
        AutoScalingGroupName=GROUP,
        Preferences={"MinHealthyPercentage": 50, "MaxHealthyPercentage": 200},
    )
    assert code == "ValidationError"
    for checkpoints in ([60, 20], [50, 50, 100], [50, 101]):  # ascending, unique, 1-100
        code, _ = _error(
            start, AutoScalingGroupName=GROUP, Preferences={"CheckpointPercentages": checkpoints}
        )
        assert code == "ValidationError", checkpoints
    code, _ = _error(
        start,
        AutoScalingGroupName=GROUP,
        DesiredConfiguration={
            "LaunchTemplate": {"LaunchTemplateId": world.template_id, "Version": "$Latest"}
        },
        Preferences={"AutoRollback": True},
    )
    assert code == "ValidationError"
    code, _ = _error(start, AutoScalingGroupName="no-such-group")
    assert code == "ValidationError"
    for template, version in (
        (world.template_id, "99"),
        (world.template_id, "x"),
        ("lt-0000000000000000f", "1"),
    ):
        code, message = _error(
            start,
            AutoScalingGroupName=GROUP,
            DesiredConfiguration={
                "LaunchTemplate": {"LaunchTemplateId": template, "Version": version}
            },
        )
        assert (code, "does not exist") == (
            "ValidationError",
            message[-len("does not exist.") : -1],
        )
    assert _error(world.autoscaling.cancel_instance_refresh, AutoScalingGroupName=GROUP)[0] == (
        "ActiveInstanceRefreshNotFound"
    )


def test_one_refresh_at_a_time_and_no_rollback_without_a_desired_configuration(
    world: World,
) -> None:
    world.autoscaling.start_instance_refresh(AutoScalingGroupName=GROUP)
    code, _ = _error(world.autoscaling.start_instance_refresh, AutoScalingGroupName=GROUP)
    assert code == "InstanceRefreshInProgress"
    code, _ = _error(world.autoscaling.rollback_instance_refresh, AutoScalingGroupName=GROUP)
    assert code == "IrreversibleInstanceRefresh"
