"""Who may hold a fleet's lock besides a release, and what a release does when it meets them.

A rollback drill holds the lock as `drill-<id>` for a short while (phoenix/drills/): a
release that finds it waits for it (DrillLockError), whatever the fleet's `when_locked`
says, so a drill never rejects a release.
"""

from __future__ import annotations

DRILL_PREFIX = "drill-"


class LockRefusedError(Exception):
    """The fleet is locked by another release, or paused; the message says which."""


class FleetPausedError(LockRefusedError):
    """The fleet's releases are paused (a queued release does not wait for a resume)."""


class DrillLockError(LockRefusedError):
    """A rollback drill holds the fleet for a few minutes: the release waits for it."""


def refusal(fleet: str, owner: str, expires: str) -> LockRefusedError:
    """The error for a lock `owner` holds until `expires`."""
    if owner.startswith(DRILL_PREFIX):
        return DrillLockError(f"fleet {fleet} is held by rollback drill {owner} until {expires}")
    return LockRefusedError(f"fleet {fleet} is locked by release {owner} until {expires}")
