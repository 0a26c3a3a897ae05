"""A canary step held for a person's decision, on the fleet's ledger item (`approval`):
the task token the release waits on, its release, and what the person is asked. Kept
while the release holds the lock (the lock's release removes it), taken by one
conditional write so a decision acts once (docs/judgment.md)."""

from __future__ import annotations

from typing import Any

from phoenix.kernel.attributes import typed
from phoenix.kernel.ledger import Ledger


def await_approval(
    ledger: Ledger, fleet: str, release_id: str, *, token: str, facts: dict[str, Any]
) -> None:
    """The held step waits: the token a `Canary Step Approved` or `Canary Step Rejected`
    answers, with what the person is asked to decide on."""
    approval = {"token": token, "release": release_id, **facts}
    ledger.set_while_locked(fleet, release_id, {"approval": typed(approval)})


def take_approval(ledger: Ledger, fleet: str, token: str) -> bool:
    """Take the held step's token for one decision; False when it was taken already (a
    duplicate or concurrent decision) or the release no longer waits."""
    return ledger.update_fleet_if(
        fleet,
        UpdateExpression="REMOVE approval",
        ConditionExpression="approval.#token = :token",
        ExpressionAttributeNames={"#token": "token"},
        ExpressionAttributeValues={":token": {"S": token}},
    )


def give_back(ledger: Ledger, fleet: str, approval: dict[str, Any]) -> None:
    """Put a taken token back (its answer failed), while its release holds the lock."""
    ledger.set_while_locked(fleet, str(approval["release"]), {"approval": typed(approval)})
