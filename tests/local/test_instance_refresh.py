"""Instance refresh in the embedded AWS, against the behaviour the AWS documentation gives:
checkpoints and bake time, and the requests it refuses (local.instance_refresh and
local.instance_refresh_validation). Batches, rollbacks and alarms, and cancelling, have
their own test_instance_refresh_* modules; tests.local.refresh_world is their world.
"""

from __future__ import annotations

from local.instance_refresh_clock import advance
from tests.local.refresh_world import (
    GROUP,
    PREFIX,
    World,
    client_error,
    start_refresh,
    world_fixture,  # noqa: F401 - the `world` fixture
)

# -- checkpoints, bake time -------------------------------------------------------------------


def test_launch_before_terminate_with_a_checkpoint(world: World) -> None:
    # Given a refresh to version 2 that pauses half way
    refresh_id = start_refresh(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)

    # When a step passes, then the first half's new instances run beside the old ones
    advance(60)
    state = world.refresh()
    assert (state["InstanceRefreshId"], state["Status"]) == (refresh_id, "InProgress")
    assert (state["PercentageComplete"], world.counts()) == (0, (4, 2))

    # And once they are healthy the old half goes and it waits at the checkpoint
    advance(60)
    state = world.refresh()
    assert (state["PercentageComplete"], state["InstancesToUpdate"]) == (50, 2)
    assert world.counts() == (2, 2)
    advance(300)  # still inside the checkpoint delay
    assert (world.refresh()["PercentageComplete"], world.counts()) == (50, (2, 2))

    # And after the delay it finishes, never below the desired capacity
    advance(300)
    advance(60)
    assert world.counts() == (2, 4)
    advance(60)
    assert world.status() == "Successful"
    assert world.images() == [world.new_image] * 4
    assert world.kinds() == ["Started", "Checkpoint Reached", "Succeeded"]


def test_a_last_checkpoint_below_100_ends_the_refresh_successful_there(world: World) -> None:
    # Given a refresh whose last checkpoint is 50: AWS replaces that much of the group
    # (the API reference: to replace all instances the last number must be 100)
    start_refresh(world, CheckpointPercentages=[20, 50], CheckpointDelay=600)

    # When time passes: one instance (25%, past 20) and the delay, then a second (50%)
    advance(60)
    advance(60)
    assert (world.status(), world.refresh()["PercentageComplete"]) == ("InProgress", 25)
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
    assert world.counts() == (2, 2)
    events = world.events()
    kinds = [e["detail-type"].removeprefix(PREFIX) for e in events]
    assert kinds == ["Started", "Checkpoint Reached", "Succeeded"]  # no pause at the last one
    assert events[1]["detail"]["CheckpointPercentage"] == "20"


def test_the_checkpoint_event_carries_percentage_and_delay_as_aws_sends_them(world: World) -> None:
    start_refresh(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)
    advance(60)
    advance(60)
    started, checkpoint = world.events()
    assert checkpoint["source"] == "aws.autoscaling"
    assert checkpoint["detail"]["AutoScalingGroupName"] == GROUP
    assert checkpoint["detail"]["CheckpointPercentage"] == "50"
    assert checkpoint["detail"]["CheckpointDelay"] == "600"
    assert set(started["detail"]) == {"InstanceRefreshId", "AutoScalingGroupName"}
    assert checkpoint["resources"][0].startswith("arn:aws:autoscaling:")


def test_bake_time_holds_the_refresh_before_success(world: World) -> None:
    start_refresh(world, BakeTime=120)
    advance(60)
    advance(60)
    assert world.status() == "Baking"
    advance(60)
    assert world.status() == "Baking"
    advance(60)
    assert world.status() == "Successful"
    assert world.kinds() == ["Started", "Started Baking", "Succeeded"]


# -- requests refused ------------------------------------------------------------------------------


def test_requests_aws_refuses_are_refused(world: World) -> None:
    start = world.autoscaling.start_instance_refresh
    code, message = client_error(
        start, AutoScalingGroupName=GROUP, Preferences={"MaxHealthyPercentage": 150}
    )
    assert (code, "MinHealthyPercentage") == ("ValidationError", message.split()[3])
    code, _ = client_error(
        start,
        AutoScalingGroupName=GROUP,
        Preferences={"MinHealthyPercentage": 50, "MaxHealthyPercentage": 200},
    )
    assert code == "ValidationError"
    for checkpoints in ([60, 20], [50, 50, 100], [50, 101]):  # ascending, unique, 1-100
        code, _ = client_error(
            start, AutoScalingGroupName=GROUP, Preferences={"CheckpointPercentages": checkpoints}
        )
        assert code == "ValidationError", checkpoints
    code, _ = client_error(
        start,
        AutoScalingGroupName=GROUP,
        DesiredConfiguration={
            "LaunchTemplate": {"LaunchTemplateId": world.template_id, "Version": "$Latest"}
        },
        Preferences={"AutoRollback": True},
    )
    assert code == "ValidationError"
    code, _ = client_error(start, AutoScalingGroupName="no-such-group")
    assert code == "ValidationError"
    for template, version in (
        (world.template_id, "99"),
        (world.template_id, "x"),
        ("lt-0000000000000000f", "1"),
    ):
        code, message = client_error(
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
    assert client_error(world.autoscaling.cancel_instance_refresh, AutoScalingGroupName=GROUP)[
        0
    ] == ("ActiveInstanceRefreshNotFound")


def test_one_refresh_at_a_time_and_no_rollback_without_a_desired_configuration(
    world: World,
) -> None:
    world.autoscaling.start_instance_refresh(AutoScalingGroupName=GROUP)
    code, _ = client_error(world.autoscaling.start_instance_refresh, AutoScalingGroupName=GROUP)
    assert code == "InstanceRefreshInProgress"
    code, _ = client_error(world.autoscaling.rollback_instance_refresh, AutoScalingGroupName=GROUP)
    assert code == "IrreversibleInstanceRefresh"
