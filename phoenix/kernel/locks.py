"""Who may hold a fleet's lock besides a release, and what a release does when it meets them.

A rollback drill holds the lock as `drill-<id>` for a short while (phoenix/drills/): a
release that finds it waits for it (DrillLockError), whatever the fleet's `when_locked`
says, so a drill never rejects a release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef

DRILL_PREFIX = "drill-"


class LockRefusedError(Exception):
    """The fleet is locked by another release, or paused; the message says which."""


class FleetPausedError(LockRefusedError):
    """The fleet's releases are paused (a queued release does not wait for a resume)."""


class DrillLockError(LockRefusedError):
    """A rollback drill holds the fleet for a few minutes: the release waits for it."""


def lock_condition(*, over_drill: bool) -> tuple[str, dict[str, AttributeValueTypeDef]]:
    """When a release takes the fleet's lock: nobody holds it, its holder's time ran out,
    or the release holds it already; not while paused. A rollback release (`over_drill`)
    also takes it from a drill, which yields: the drill's next run sees its lock gone and
    leaves the slot to the release (phoenix/drills/runtime/drill.py)."""
    free = "attribute_not_exists(lock_owner) OR lock_expires < :now OR lock_owner = :release"
    extra: dict[str, AttributeValueTypeDef] = {":drill": {"S": DRILL_PREFIX}} if over_drill else {}
    if over_drill:
        free += " OR begins_with(lock_owner, :drill)"
    return f"({free}) AND (attribute_not_exists(paused) OR paused = :false)", extra


def refusal(fleet: str, owner: str, expires: str) -> LockRefusedError:
    """The error for a lock `owner` holds until `expires`."""
    if owner.startswith(DRILL_PREFIX):
        return DrillLockError(f"fleet {fleet} is held by rollback drill {owner} until {expires}")
    return LockRefusedError(f"fleet {fleet} is locked by release {owner} until {expires}")
