"""The one clock and the one ISO 8601 reader every handler uses."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, aware, in UTC (the embedded AWS replaces this for simulated time)."""
    return datetime.now(UTC)


def parse_time(value: str | datetime) -> datetime:
    """An aware datetime from ISO 8601 text (a trailing `Z` included) or a datetime; a
    value without a zone is taken as UTC, as AWS APIs mean it. ValueError if unreadable."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
