"""A slot group's name says its fleet: the refresh event receiver reads the fleet from it
instead of a map of every group in its environment."""

from __future__ import annotations

import pytest

from phoenix.kernel.names import fleet_of_group, resource_name


@pytest.mark.parametrize("fleet", ["web", "api-v2", "a", "blue-green"])
@pytest.mark.parametrize("slot", ["blue", "green"])
def test_the_fleet_of_a_slot_group_is_read_back_from_its_name(fleet: str, slot: str) -> None:
    assert fleet_of_group("sandbox", resource_name("sandbox", fleet, slot)) == fleet


@pytest.mark.parametrize(
    "group",
    [
        "phoenix-production-web-blue",  # another environment's
        "phoenix-sandbox-web",  # no slot
        "phoenix-sandbox--blue",  # no fleet
        "my-asg",
        "",
    ],
)
def test_a_group_that_is_no_slot_here_has_no_fleet(group: str) -> None:
    assert fleet_of_group("sandbox", group) is None
