"""Blocked windows: when no wave may start, and the next moment one may.

A window blocks a moment when every part it gives holds for the moment's local date and
time in the window's time zone: its weekday is one of `days`, its date one of `dates`,
its time of day in `hours` (`HH:MM-HH:MM`, wrapping past midnight when the end is
earlier). Local time follows the zone's daylight saving rules (zoneinfo).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead the next allowed start is looked for, a minute at a time; windows that
# block this long leave no time to release in.
HORIZON = timedelta(days=31)
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class NoAllowedStartError(Exception):
    """The blocked windows leave no minute to start a wave in within HORIZON."""


def parse_hours(value: str) -> tuple[int, int]:
    """`"HH:MM-HH:MM"` -> (start, end) in minutes of the day; a range may wrap midnight
    (`18:00-08:00`). An empty range (start equal to end) is refused."""
    match = _HOURS.match(value)
    if not match:
        raise ValueError("is not an hour range such as 18:00-08:00 (24-hour HH:MM-HH:MM)")
    hour, minute, end_hour, end_minute = (int(part) for part in match.groups())
    start, end = hour * 60 + minute, end_hour * 60 + end_minute
    if start == end:
        raise ValueError("is an empty hour range (it starts where it ends)")
    return start, end


def blocks(window: Mapping[str, Any], moment: datetime) -> bool:
    """Whether `window` (a blocked window of the config, as plain values) blocks `moment`."""
    local = moment.astimezone(ZoneInfo(str(window.get("timezone") or "UTC")))
    days = window.get("days") or []
    if days and DAYS[local.weekday()] not in days:
        return False
    dates = [str(d) for d in window.get("dates") or []]
    if dates and local.date().isoformat() not in dates:
        return False
    hours = window.get("hours")
    if hours:
        start, end = parse_hours(str(hours))
        minute = local.hour * 60 + local.minute
        inside = start <= minute < end if start < end else minute >= start or minute < end
        if not inside:
            return False
    return True


def next_start(windows: Iterable[Mapping[str, Any]], now: datetime) -> datetime:
    """`now` when no window blocks it, else the first whole minute after it that none
    blocks. NoAllowedStartError when there is none within HORIZON."""
    windows = list(windows)
    moment = now.astimezone(UTC)
    if not any(blocks(w, moment) for w in windows):
        return moment
    moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # A minute at a time, simply: at most 44,640 checks of a few windows, well under a
    # second, and exact across daylight saving changes (no calendar arithmetic to get wrong).
    end = now + HORIZON
    while moment <= end:
        if not any(blocks(w, moment) for w in windows):
            return moment
        moment += timedelta(minutes=1)
    raise NoAllowedStartError(
        f"the blocked windows leave no time to start within {HORIZON.days} days"
    )
