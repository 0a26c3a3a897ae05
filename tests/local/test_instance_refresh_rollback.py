"""Rolling back an instance refresh in the embedded AWS, asked (RollbackInstanceRefresh) or
on an alarm with AutoRollback, and the AlarmSpecification alarms that fail a refresh or
refuse its start.
"""

from __future__ import annotations

import pytest

from local.instance_refresh_clock import advance
from tests.local.refresh_world import (
    ALARM,
    GROUP,
    AlarmState,
    World,
    client_error,
    put_alarm,
    start_refresh,
    world_fixture,  # noqa: F401 - the `world` fixture
)


def test_rollback_returns_every_replaced_instance_to_the_previous_version(world: World) -> None:
    start_refresh(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)
    advance(60)
    advance(60)
    world.autoscaling.rollback_instance_refresh(AutoScalingGroupName=GROUP)
    assert world.status() == "RollbackInProgress"
    advance(60)
    assert world.counts() == (4, 2)  # the previous version launched before the new goes
    advance(60)
    state = world.refresh()
    assert (state["Status"], state["PercentageComplete"]) == ("RollbackSuccessful", 100)
    assert state["RollbackDetails"]["RollbackReason"]
    assert state["RollbackDetails"]["PercentageCompleteOnRollback"] == 50
    assert world.images() == [world.old_image] * 4
    (group,) = world.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    assert group["LaunchTemplate"]["Version"] == "1"
    assert world.kinds()[-2:] == ["Rollback Started", "Rollback Succeeded"]


def test_a_rollback_ends_the_batch_in_flight(world: World) -> None:
    start_refresh(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)
    advance(60)  # two new instances launched, not yet found healthy
    world.autoscaling.rollback_instance_refresh(AutoScalingGroupName=GROUP)
    advance(60)
    assert world.status() == "RollbackSuccessful"
    assert world.images() == [world.old_image] * 4


def test_auto_rollback_follows_an_alarm(world: World) -> None:
    cloudwatch = put_alarm()
    start_refresh(
        world,
        AutoRollback=True,
        AlarmSpecification={"Alarms": [ALARM]},
        CheckpointPercentages=[50, 100],
        CheckpointDelay=600,
    )
    advance(60)
    advance(60)
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="errors")
    advance(60)  # at the checkpoint: alarms are watched while it waits
    state = world.refresh()
    assert state["Status"] == "RollbackInProgress"
    assert ALARM in state["StatusReason"]
    advance(60)
    advance(60)
    assert world.status() == "RollbackSuccessful"
    assert world.images() == [world.old_image] * 4
    assert world.kinds() == [
        "Started",
        "Checkpoint Reached",
        "Rollback Started",
        "Rollback Succeeded",
    ]


def test_an_alarm_fails_the_refresh_when_auto_rollback_is_off(world: World) -> None:
    # Given a refresh half done, watching an alarm, without auto rollback
    cloudwatch = put_alarm()
    start_refresh(
        world,
        AlarmSpecification={"Alarms": [ALARM]},
        CheckpointPercentages=[50, 100],
        CheckpointDelay=600,
    )
    advance(60)
    advance(60)

    # When the alarm goes into ALARM, then the refresh fails without rolling back
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="errors")
    advance(60)
    state = world.refresh()
    assert (state["Status"], state["PercentageComplete"]) == ("Failed", 50)
    assert ALARM in state["StatusReason"]
    advance(600)
    assert world.counts() == (2, 2)
    assert world.kinds() == ["Started", "Checkpoint Reached", "Failed"]

    # And a new refresh on that alarm is refused while it is in ALARM
    code, message = client_error(
        world.autoscaling.start_instance_refresh,
        AutoScalingGroupName=GROUP,
        Preferences={"AlarmSpecification": {"Alarms": [ALARM]}},
    )
    assert (code, ALARM in message) == ("ValidationError", True)


def test_an_alarm_baking_fails_the_refresh(world: World) -> None:
    cloudwatch = put_alarm()
    start_refresh(world, AlarmSpecification={"Alarms": [ALARM]}, BakeTime=600)
    advance(60)
    advance(60)
    assert world.status() == "Baking"
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="errors")
    advance(60)
    assert world.status() == "Failed"
    assert world.kinds() == ["Started", "Started Baking", "Failed"]


@pytest.mark.parametrize("state", ["ALARM", "INSUFFICIENT_DATA"])
def test_a_refresh_on_an_alarm_not_ok_is_refused(world: World, state: AlarmState) -> None:
    put_alarm(state)
    code, _ = client_error(
        world.autoscaling.start_instance_refresh,
        AutoScalingGroupName=GROUP,
        Preferences={"AlarmSpecification": {"Alarms": [ALARM]}},
    )
    assert code == "ValidationError"
    assert (
        world.autoscaling.describe_instance_refreshes(AutoScalingGroupName=GROUP)[
            "InstanceRefreshes"
        ]
        == []
    )


def test_more_than_ten_alarms_are_refused(world: World) -> None:
    code, _ = client_error(
        world.autoscaling.start_instance_refresh,
        AutoScalingGroupName=GROUP,
        Preferences={"AlarmSpecification": {"Alarms": [f"a{i}" for i in range(11)]}},
    )
    assert code == "ValidationError"
