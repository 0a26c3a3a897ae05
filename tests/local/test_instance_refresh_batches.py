"""Instance refresh batches in the embedded AWS (local.instance_refresh_batches): how many
instances a refresh replaces at a time and in which order, after the minimum and maximum
healthy percentages and the group's maximum size, and replacements failing their health
checks, retried for an hour.
"""

from __future__ import annotations

from typing import Any

import pytest

from local.instance_refresh_clock import advance
from tests.local.refresh_world import (
    GROUP,
    World,
    fail_health_checks,
    start_refresh,
    start_refresh_exactly,
    world_fixture,  # noqa: F401 - the `world` fixture
)

# -- how many at a time, and in which order ---------------------------------------------------


def _trace(world: World, steps: int) -> list[tuple[int, int]]:
    """(old, new) instances after each of `steps` steps."""
    seen = []
    for _ in range(steps):
        advance(60)
        seen.append(world.counts())
    return seen


@pytest.mark.parametrize(
    ("max_size", "preferences", "trace"),
    [
        # above 100: the headroom (150% of 4 = 6) launches first, the old ones go after
        (8, {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 150}, [(4, 2), (2, 4), (0, 4)]),
        # 100 (the default when omitted): terminated as their replacements launch, as many
        # as MinHealthyPercentage lets go (50% of 4 = 2), never above the desired capacity
        (8, {"MinHealthyPercentage": 50}, [(2, 2), (0, 4), (0, 4)]),
        (8, {"MinHealthyPercentage": 50, "MaxHealthyPercentage": 100}, [(2, 2), (0, 4), (0, 4)]),
        # both: one launched ahead (125%) and one terminated (75%) in each batch of two
        (8, {"MinHealthyPercentage": 75, "MaxHealthyPercentage": 125}, [(3, 2), (1, 4), (0, 4)]),
        # no room within both bounds: MaxHealthyPercentage set launches one ahead ...
        (
            8,
            {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 100},
            [(4, 1), (3, 2), (2, 3), (1, 4), (0, 4)],
        ),
        # ... omitted (the defaults too: 90% of 4 rounds up to 4) terminates one first
        (8, {"MinHealthyPercentage": 100}, [(3, 1), (2, 2), (1, 3), (0, 4), (0, 4)]),
        (8, {}, [(3, 1), (2, 2), (1, 3), (0, 4), (0, 4)]),
        # the group's maximum size bounds the headroom (5: one at a time, not four) ...
        (
            5,
            {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200},
            [(4, 1), (3, 2), (2, 3), (1, 4), (0, 4)],
        ),
        # ... and at its maximum size what MinHealthyPercentage lets go is terminated first
        (4, {"MinHealthyPercentage": 50, "MaxHealthyPercentage": 150}, [(2, 2), (0, 4), (0, 4)]),
    ],
)
def test_batches_follow_the_minimum_and_maximum_healthy_percentages(
    world: World, max_size: int, preferences: dict[str, Any], trace: list[tuple[int, int]]
) -> None:
    world.group(MaxSize=max_size)
    start_refresh_exactly(world, preferences)
    assert _trace(world, len(trace)) == trace
    assert world.status() == "Successful"
    assert world.images() == [world.new_image] * 4


def test_at_its_maximum_size_with_100_percent_minimum_healthy_nothing_can_be_replaced(
    world: World,
) -> None:
    # Given a group at its maximum size that must keep all its capacity
    world.group(MaxSize=4)
    start_refresh(world)

    # When time passes, then no instance is replaced and the status says why
    advance(60)
    assert (world.status(), world.counts()) == ("InProgress", (4, 0))
    assert "MinHealthyPercentage" in world.refresh()["StatusReason"]
    for _ in range(5):
        advance(600)
    assert world.status() == "InProgress"

    # And after an hour of it, the refresh fails
    advance(600)
    assert (world.status(), world.counts()) == ("Failed", (4, 0))
    assert world.kinds() == ["Started", "Failed"]


# -- failing replacements ---------------------------------------------------------------------


@pytest.mark.parametrize("max_size", [8, 4])
def test_replacements_failing_health_checks_fail_the_refresh_after_an_hour(
    world: World, max_size: int
) -> None:
    # Given new instances that fail their ELB health checks, with room to launch two
    # first (8) or at the group's maximum size (4: two terminated as theirs launch)
    world.group(MaxSize=max_size)
    fail_health_checks(world, world.new_image)
    start_refresh_exactly(world, {"MinHealthyPercentage": 50, "MaxHealthyPercentage": 150})

    # When the refresh keeps replacing them for less than an hour, it is in progress
    advance(60)
    for _ in range(5):
        advance(600)
        state = world.refresh()
        assert (state["Status"], state["PercentageComplete"]) == ("InProgress", 0)
        assert "health checks" in state["StatusReason"]

    # Then after an hour it fails: the old instances launched-first replacements were
    # for still serve, the terminated ones' places hold failing instances
    advance(600)
    assert world.status() == "Failed"
    assert world.counts() == (2, 2)
    assert world.kinds() == ["Started", "Failed"]


def test_replacements_failing_health_checks_with_auto_rollback_roll_back(world: World) -> None:
    world.group(MaxSize=4)
    fail_health_checks(world, world.new_image)
    start_refresh_exactly(
        world, {"MinHealthyPercentage": 50, "MaxHealthyPercentage": 150, "AutoRollback": True}
    )
    advance(60)
    for _ in range(6):
        advance(600)
    assert world.status() == "RollbackInProgress"
    advance(60)
    assert world.status() == "RollbackSuccessful"
    assert world.images() == [world.old_image] * 4
    assert world.kinds() == ["Started", "Rollback Started", "Rollback Succeeded"]


def test_a_rollback_to_a_failing_configuration_ends_rollback_failed(world: World) -> None:
    # Given half the group replaced, then the previous AMI failing its health checks
    start_refresh(world, CheckpointPercentages=[50, 100], CheckpointDelay=600)
    advance(60)
    advance(60)
    fail_health_checks(world, world.old_image)

    # When it is rolled back, the rollback keeps trying for an hour and then fails
    world.autoscaling.rollback_instance_refresh(AutoScalingGroupName=GROUP)
    advance(60)
    for _ in range(5):
        advance(600)
        assert world.status() == "RollbackInProgress"
    advance(600)
    assert world.status() == "RollbackFailed"
    assert world.kinds()[-2:] == ["Rollback Started", "Rollback Failed"]
