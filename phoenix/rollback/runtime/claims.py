"""Claiming a rollback on the fleet's ledger item: exactly one event acts on a release.

A claim is a conditional write (CLAIMS). The event that wins finishes every step after
it; the same event delivered again after a failure (Lambda retries asynchronous events)
claims again and finishes, so no step is left undone as a "duplicate".
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from phoenix.kernel import clock
from phoenix.kernel.ledger import Ledger, iso

if TYPE_CHECKING:
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef

    from phoenix.rollback.runtime.logic import Decision


WINDOW_LOCK_HOLD = timedelta(minutes=15)
CLAIMS = {
    # the release still holds the lock, is in flight (its Succeed step has not closed it:
    # that removes the flight), and no other event claimed its rollback
    "in_flight": "lock_owner = :release AND attribute_exists(flight) AND "
    "(attribute_not_exists(rolled_back) OR rolled_back <> :release OR rolled_back_by = :event)",
    # its success still stands, the window's end has not retired the old slot, and no
    # release holds the fleet but this one, finishing its Succeed step; or this event
    # claimed it and did not finish (a retry)
    "window": "(last_release = :release AND last_outcome = :succeeded "
    "AND attribute_exists(warm_slot) AND (attribute_not_exists(lock_owner) "
    "OR lock_expires < :now OR lock_owner = :release)) OR (rolled_back = :release "
    "AND rolled_back_by = :event AND attribute_exists(warm_slot))",
    # its success still stands; or this event claimed it and the rollback release has
    # not ended yet (a retry)
    "release": "(last_release = :release AND last_outcome = :succeeded) OR (rolled_back = "
    ":release AND rolled_back_by = :event AND last_release = :release)",
}


def window_lock(release_id: str) -> str:
    """The lock a window rollback holds: no release may start while it moves the fleet."""
    return f"window-rollback-{release_id}"


def claim(ledger: Ledger, fleet: str, release_id: str, expected: str, event_id: str) -> bool:
    """Mark the release as rolled back by `event_id` on the fleet item (conditional).

    `expected` is what makes this the first claim (CLAIMS): `in_flight` (the release still
    holds the lock), `window` (its success stands; the claim also takes the fleet's lock
    for the rollback's few calls) or `release`. The same event claims again when it is
    delivered again after a failure (Lambda retries an asynchronous event), so the steps
    after a claim are always finished, never left as a "duplicate"."""
    now = clock.now()
    values: dict[str, AttributeValueTypeDef] = {
        ":release": {"S": release_id},
        ":outcome": {"S": "rolled back"},
        ":event": {"S": event_id},
    }
    update = (
        "SET rolled_back = :release, rolled_back_by = :event, rolled_back_how = :how, "
        "last_outcome = :outcome"
    )
    values[":how"] = {"S": expected}
    if expected != "in_flight":
        values[":succeeded"] = {"S": "succeeded"}
    if expected == "window":
        values[":now"] = {"S": iso(now)}
        values[":owner"] = {"S": window_lock(release_id)}
        values[":expires"] = {"S": iso(now + WINDOW_LOCK_HOLD)}
        update += ", lock_owner = :owner, lock_expires = :expires"
    return ledger.update_fleet_if(
        fleet,
        UpdateExpression=update,
        ConditionExpression=CLAIMS[expected],
        ExpressionAttributeValues=values,
    )


def claimed_by(item: dict[str, Any], event_id: str) -> bool:
    """`event_id` claimed the rollback of a release in flight or in its window and did not
    finish: the lock the claim stands on (the release's, or the window rollback's) is
    still held."""
    rolled = item.get("rolled_back")
    if not rolled or item.get("rolled_back_by") != event_id:
        return False
    return item.get("lock_owner") in (rolled, window_lock(str(rolled)))


def unfinished(item: dict[str, Any], event_id: str) -> Decision | None:
    """What this event claimed and did not finish (delivered again after a failure), to
    finish: a rollback in flight or in the window (its lock still held), or a rollback
    release whose execution has not ended (the fleet's last release is still the one
    undone)."""
    from phoenix.rollback.runtime.logic import Decision  # noqa: PLC0415 - a cycle otherwise

    rolled = str(item.get("rolled_back") or "")
    how = item.get("rolled_back_how")
    if claimed_by(item, event_id) and how in ("in_flight", "window"):
        return Decision(how, rolled)
    mine = rolled and item.get("rolled_back_by") == event_id
    if mine and how == "release" and item.get("last_release") == rolled:
        return Decision("release", rolled)
    return None
