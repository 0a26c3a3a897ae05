"""Cancelling an instance refresh in the embedded AWS (CancelInstanceRefresh): Cancelling,
then Cancelled once the batch in flight settles, or Cancelled at once without waiting
for transitioning instances.
"""

from __future__ import annotations

from local.instance_refresh_clock import advance
from tests.local.refresh_world import (
    GROUP,
    World,
    client_error,
    start_refresh,
    world_fixture,  # noqa: F401 - the `world` fixture
)


def test_cancel_goes_cancelling_then_cancelled_when_the_batch_in_flight_settles(
    world: World,
) -> None:
    # Given a refresh with two new instances launched
    start_refresh(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)
    advance(60)

    # When it is cancelled, then it is Cancelling, still active: no new refresh, no
    # rollback of it, no second cancel, and no Cancelled event yet
    world.autoscaling.cancel_instance_refresh(AutoScalingGroupName=GROUP)
    assert world.status() == "Cancelling"
    autoscaling = world.autoscaling
    code, _ = client_error(autoscaling.start_instance_refresh, AutoScalingGroupName=GROUP)
    assert code == "InstanceRefreshInProgress"
    code, _ = client_error(autoscaling.rollback_instance_refresh, AutoScalingGroupName=GROUP)
    assert code == "ActiveInstanceRefreshNotFound"
    code, _ = client_error(autoscaling.cancel_instance_refresh, AutoScalingGroupName=GROUP)
    assert code == "ActiveInstanceRefreshNotFound"
    assert world.kinds() == ["Started"]

    # And a step later the launches in flight have completed and it is Cancelled, where it
    # is: nothing more is replaced, nothing rolled back
    advance(60)
    state = world.refresh()
    assert (state["Status"], state["PercentageComplete"]) == ("Cancelled", 50)
    assert world.counts() == (2, 2)
    assert world.kinds() == ["Cancelled"]
    advance(600)
    assert world.counts() == (2, 2)
    autoscaling.start_instance_refresh(AutoScalingGroupName=GROUP)


def test_cancel_without_waiting_for_transitioning_instances_is_cancelled_at_once(
    world: World,
) -> None:
    start_refresh(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)
    advance(60)
    world.autoscaling.cancel_instance_refresh(
        AutoScalingGroupName=GROUP, WaitForTransitioningInstances=False
    )
    assert world.status() == "Cancelled"
    assert world.kinds() == ["Started", "Cancelled"]
    world.autoscaling.start_instance_refresh(AutoScalingGroupName=GROUP)


def test_a_rollback_can_be_cancelled(world: World) -> None:
    start_refresh(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)
    advance(60)
    advance(60)
    world.autoscaling.rollback_instance_refresh(AutoScalingGroupName=GROUP)
    world.autoscaling.cancel_instance_refresh(AutoScalingGroupName=GROUP)
    assert world.status() == "Cancelling"
    advance(60)
    assert world.status() == "Cancelled"
    assert world.kinds()[-2:] == ["Rollback Started", "Cancelled"]


def test_a_finished_refresh_cannot_be_cancelled_or_rolled_back(world: World) -> None:
    start_refresh(world)
    advance(60)
    advance(60)
    assert world.status() == "Successful"
    for call in (
        world.autoscaling.cancel_instance_refresh,
        world.autoscaling.rollback_instance_refresh,
    ):
        assert client_error(call, AutoScalingGroupName=GROUP)[0] == "ActiveInstanceRefreshNotFound"
