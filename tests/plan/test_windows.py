"""Blocked windows: which moments they block, and the next moment a wave may start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoenix.plan.runtime.windows import NoAllowedStartError, blocks, next_start

BERLIN = ZoneInfo("Europe/Berlin")
WEEKEND: dict[str, Any] = {"days": ["sat", "sun"], "timezone": "Europe/Berlin"}
NIGHTS: dict[str, Any] = {"hours": "18:00-08:00", "timezone": "Europe/Berlin"}
HOLIDAYS: dict[str, Any] = {"dates": ["2026-12-24", "2026-12-31"], "timezone": "Europe/Berlin"}


def _berlin(day: tuple[int, int, int], hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(*day, hour, minute, second, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("window", "moment", "blocked"),
    [
        (WEEKEND, _berlin((2026, 12, 5), 12, 0), True),  # a Saturday
        (WEEKEND, _berlin((2026, 12, 7), 0, 0), False),  # Monday, midnight in Berlin
        (WEEKEND, datetime(2026, 12, 6, 23, 30, tzinfo=UTC), False),  # Monday 00:30 in Berlin
        (NIGHTS, _berlin((2026, 12, 2), 18, 0), True),
        (NIGHTS, _berlin((2026, 12, 2), 7, 59), True),
        (NIGHTS, _berlin((2026, 12, 2), 8, 0), False),
        (HOLIDAYS, _berlin((2026, 12, 24), 9, 0), True),
        (HOLIDAYS, _berlin((2026, 12, 23), 23, 59), False),
        ({"days": ["fri"], "hours": "12:00-14:00"}, datetime(2026, 12, 4, 13, tzinfo=UTC), True),
        ({"days": ["fri"], "hours": "12:00-14:00"}, datetime(2026, 12, 3, 13, tzinfo=UTC), False),
    ],
)
def test_a_window_blocks_the_local_moments_it_names(
    window: dict[str, Any], moment: datetime, blocked: bool
) -> None:
    assert blocks(window, moment) is blocked


def test_the_next_start_after_a_weekend_night_is_monday_morning() -> None:
    friday_evening = _berlin((2026, 12, 4), 19, 30)

    start = next_start([WEEKEND, NIGHTS], friday_evening)

    assert start == _berlin((2026, 12, 7), 8, 0)


def test_an_unblocked_moment_starts_at_once() -> None:
    moment = _berlin((2026, 12, 2), 10, 15, 30)
    assert next_start([WEEKEND, NIGHTS, HOLIDAYS], moment) == moment


def test_local_time_follows_daylight_saving() -> None:
    # Berlin moves to summer time on 2026-03-29: 08:00 local is 06:00 UTC from then on.
    start = next_start([NIGHTS], datetime(2026, 3, 30, 5, 0, tzinfo=UTC))
    assert start == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)


def test_windows_that_never_open_are_an_error() -> None:
    always = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
    with pytest.raises(NoAllowedStartError, match="no time to start"):
        next_start([always], datetime(2026, 12, 2, tzinfo=UTC))


@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    )
)
def test_the_next_start_is_unblocked_and_no_earlier_minute_is(moment: datetime) -> None:
    windows = [WEEKEND, NIGHTS, HOLIDAYS]
    start = next_start(windows, moment)
    assert start >= moment
    assert not any(blocks(w, start) for w in windows)
    if start > moment:  # every whole minute before it was blocked
        earlier = start - timedelta(minutes=1)
        assert earlier < moment or any(blocks(w, earlier) for w in windows)
