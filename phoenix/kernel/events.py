"""phoenix's own events on the default event bus (source `phoenix`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from types_boto3_events.client import EventBridgeClient

DetailType = Literal[
    "Release Started",
    "Release Step Completed",
    "Release Succeeded",
    "Release Rolled Back",
    "Release Failed",
    "Release Rejected",
    "Canary Approval Requested",
    "Plan Started",
    "Plan Wave Started",
    "Plan Halted",
    "Plan Succeeded",
    "Plan Abandoned",
    "Plan Failed",
    "Plan Resume Requested",
    "Plan Abandon Requested",
    "Promotion Approval Requested",
    "Fleet Drift Detected",
    "Fleet Vulnerable",
    "Rollback Drill Passed",
    "Rollback Drill Failed",
    # what people ask for (the `phoenix` command puts them)
    "Release Requested",
    "Rollback Requested",
    "Releases Paused",
    "Releases Resumed",
    "Canary Step Approved",
    "Canary Step Rejected",
]


class EventNotAcceptedError(RuntimeError):
    """EventBridge answered PutEvents with a failed entry."""


def put(events: EventBridgeClient, detail_type: DetailType, body: dict[str, Any]) -> str:
    """One `phoenix` event on the default bus; the id EventBridge gave it."""
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
    entries = response.get("Entries") or [{}]
    return str(entries[0].get("EventId", ""))
