"""Release events on the default event bus (source `phoenix`): DESIGN.md section 6."""

from __future__ import annotations

import json
from typing import Any, Literal

from functions.common.release_models import ReleaseState

DetailType = Literal[
    "Release Started",
    "Release Step Completed",
    "Release Succeeded",
    "Release Rolled Back",
    "Release Failed",
    "Release Rejected",
]


class EventNotAcceptedError(RuntimeError):
    """EventBridge answered PutEvents with a failed entry."""


def put(events: Any, detail_type: DetailType, body: dict[str, Any]) -> None:
    """One `phoenix` event on the default bus."""
    response = events.put_events(
        Entries=[
            {
                "Source": "phoenix",
                "DetailType": detail_type,
                "Detail": json.dumps(body, default=str),
                "Resources": [],
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise EventNotAcceptedError(json.dumps(response.get("Entries", [])))


def publish(events: Any, detail_type: DetailType, state: ReleaseState, **detail: Any) -> None:
    """One event with the release id, fleet, environment and AMIs, plus `detail`."""
    body = {
        "release_id": state.release.id,
        "environment": state.environment,
        "fleet": state.fleet,
        "strategy": state.fleet_spec.strategy,
        "to_ami": state.ami,
        "from_ami": state.plan.from_ami if state.plan else None,
        **detail,
    }
    put(events, detail_type, body)
