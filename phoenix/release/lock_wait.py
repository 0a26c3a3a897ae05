"""The release's waits for a fleet another release holds (docs/release.md, docs/rollback.md):
how many times its preflight tries the lock, and what it does when refused.

A release for a locked fleet is rejected, or (when_locked: queue) tries the lock again
every `queue_retry_seconds`. A rollback release (the rollback function's, after a window)
may meet the lock of the retire of the very release it undoes, taken between the
function's decision and its preflight (held five minutes at most: finalize.RETIRE_HOLD):
it waits for it, a minute at a time, past that hold, whatever the fleet's when_locked.
Any release that meets a rollback drill's lock (phoenix/drills/) waits for it a minute at a
time: a drill holds the lock for minutes (drills.DRILL_HOLD at most) and frees it on its own,
so the wait ends with it, and a drill never rejects a release.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

ROLLBACK_LOCK_WAIT_SECONDS = 60
ROLLBACK_LOCK_ATTEMPTS = 6
DRILL_LOCK_WAIT_SECONDS = 60
ROLLBACK = sfn.Condition.string_matches("$.trigger", "rollback*")


def drill_wait(scope: Construct) -> sfn.Wait:
    """The wait before a release tries again a lock a rollback drill holds."""
    return sfn.Wait(
        scope,
        "DrillLockWait",
        time=sfn.WaitTime.duration(Duration.seconds(DRILL_LOCK_WAIT_SECONDS)),
    )


def _one_less(scope: Construct, id: str) -> sfn.Pass:
    return sfn.Pass(
        scope,
        id,
        parameters={"left": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.queue.left"), -1)},
        result_path="$.queue",
    )


def attempts(scope: Construct, preflight: sfn.IChainable) -> sfn.Choice:
    """How many more times the preflight may try the lock (`$.queue.left`), then it."""
    start_queue = sfn.Pass(
        scope,
        "QueueAttempts",
        parameters={"left": sfn.JsonPath.number_at("$.fleet_spec.queue_attempts")},
        result_path="$.queue",
    )
    rollback_attempts = sfn.Pass(
        scope,
        "RollbackLockAttempts",
        parameters={"left": ROLLBACK_LOCK_ATTEMPTS},
        result_path="$.queue",
    )
    return (
        sfn.Choice(scope, "LockAttempts")
        .when(ROLLBACK, rollback_attempts.next(preflight))
        .otherwise(start_queue.next(preflight))
    )


def queue_or_reject(
    scope: Construct, preflight: sfn.IChainable, reject: sfn.IChainable
) -> sfn.Choice:
    """A refused lock: wait and try again while attempts are left, else `reject`."""
    retry_later = sfn.Wait(
        scope, "QueueWait", time=sfn.WaitTime.seconds_path("$.fleet_spec.queue_retry_seconds")
    )
    rollback_retry = sfn.Wait(
        scope,
        "RollbackLockWait",
        time=sfn.WaitTime.duration(Duration.seconds(ROLLBACK_LOCK_WAIT_SECONDS)),
    )
    left = sfn.Condition.number_greater_than("$.queue.left", 0)
    queued = sfn.Condition.string_equals("$.fleet_spec.when_locked", "queue")
    return (
        sfn.Choice(scope, "QueueOrReject")
        .when(
            sfn.Condition.and_(ROLLBACK, left),
            _one_less(scope, "RollbackWaitsForLock").next(rollback_retry).next(preflight),
        )
        .when(
            sfn.Condition.and_(queued, left),
            _one_less(scope, "StillQueued").next(retry_later).next(preflight),
        )
        .otherwise(reject)
    )
