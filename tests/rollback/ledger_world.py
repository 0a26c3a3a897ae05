"""What the release functions write on the rollback tests' moto ledger table
(tests/rollback/conftest.py): the start of a release in flight, and its success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from phoenix.kernel import ledger
from phoenix.kernel.ledger import Ledger
from tests.release.release_state import AMI, PREVIOUS_AMI, TABLE

FLIGHT = {
    "strategy": "canary",
    "active_slot": "blue",
    "target_slot": "green",
    "from_ami": PREVIOUS_AMI,
    "to_ami": AMI,
    "rollback": False,
}


def start(dynamodb: Any, release: str, **flight: Any) -> None:
    """What preflight writes: the lock, the release item and the flight."""
    Ledger(dynamodb, TABLE).acquire("web", release, hold=ledger.LOCK_HOLD)
    Ledger(dynamodb, TABLE).open_release("web", release, {"to_ami": AMI})
    Ledger(dynamodb, TABLE).record_flight("web", release, FLIGHT | flight)


def succeed(dynamodb: Any, release: str, window: timedelta, *, unlock: bool = True) -> None:
    """What finalize writes on a success keeping the old slot warm for `window` (without
    `unlock`: the end of its Succeed step, which frees the lock, still to come)."""
    warm = {
        "release": release,
        "old_slot": "blue",
        "new_slot": "green",
        "previous_ami": PREVIOUS_AMI,
        "until": ledger.iso(datetime.now(UTC) + window),
    }
    assert Ledger(dynamodb, TABLE).close_success(
        "web", release, good_ami=AMI, previous_ami=PREVIOUS_AMI, window=warm
    )
    if unlock:
        Ledger(dynamodb, TABLE).release_lock("web", release)
