"""AWS's sample events and phoenix's own, as stored in tests/events: a fresh copy each
time, so a test that changes one changes nothing another reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent / "events"


def sample_event(name: str) -> dict[str, Any]:
    """tests/events/<name>.json."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event
