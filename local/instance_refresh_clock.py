"""Simulated time for instance refreshes: each step replaces what the preferences allow.

See local.instance_refresh for the API. `advance(seconds)` is one step of `seconds` for
every active refresh (local.clock calls it each simulated minute; tests call it).

A refresh replaces instances in batches, each over two steps (launched, then found
healthy), as wide as its minimum and maximum healthy percentages and the group's
maximum size allow and never past the next checkpoint: local.instance_refresh_batches.

New instances are healthy at once, except that in a group with ELB health checks an
instance from a failing AMI (local.application) fails them. "If the new instances don't
pass their health checks, Amazon EC2 Auto Scaling terminates and replaces them. If the
instance refresh can't launch any healthy instances, it will eventually fail, leaving
the other 90 percent of the group untouched" (Core concepts): the failing ones are
replaced each step and the instances they were to replace keep serving (those of the
batch already terminated stay replaced by failing ones); "Amazon EC2 Auto Scaling keeps
retrying for an hour ... If the problem persists after an hour, the operation fails"
(user guide, "How an instance refresh works", Limitations, One-hour timeout), with
AutoRollback rolled back instead ("the instance refresh attempts to complete all
replacements for one hour before it fails and rolls back", user guide, "Undo changes
with a manual or auto rollback"). So it is too when no instance can be replaced at all
(a group at its maximum size with MinHealthyPercentage 100, local.instance_refresh_batches).
A rollback whose previous configuration fails so ends RollbackFailed ("the rollback
workflow will still occur, but it will eventually fail", Considerations).

Alarms: while the refresh is InProgress or Baking, an AlarmSpecification alarm in ALARM
fails it, or with AutoRollback rolls it back ("If you specify a CloudWatch alarm but do
not enable auto rollback, and the alarm state goes to ALARM, the instance refresh fails
without rolling back"; auto rollback reverses what was deployed "if any CloudWatch
alarms you specify go into the ALARM state", same page). A rollback ends the refresh's
own in-flight batch (its new instances terminated, the group back to its capacity) and
then replaces, batch by batch, every instance the refresh launched.

Cancelling: the next step lets the in-flight batch complete (or, failing, ends it) and
the refresh is Cancelled; a refresh cancelled without waiting settles its batch the
same way in the background. BakeTime: "The amount of time, in seconds, to wait at the
end of an instance refresh before the instance refresh is considered complete"
(RefreshPreferences.BakeTime): Baking, then Successful.
"""

from __future__ import annotations

from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
from moto.cloudwatch.models import cloudwatch_backends

from local import instance_refresh_batches as batches
from local.instance_refresh import ACTIVE, ATTRIBUTE, Refresh, backends, finish, start_rollback
from local.instance_refresh_events import publish

ONE_HOUR = 3600.0
FAILED_HEALTH_CHECKS = "New instances failed their Elastic Load Balancing health checks."
NO_ROOM = (
    "No instance can be replaced without going below MinHealthyPercentage or above the "
    "group's maximum size."
)

# -- time ------------------------------------------------------------------------------------


def advance(seconds: float = 60.0) -> None:
    """Move every active refresh on by `seconds` of simulated time (one step)."""
    for backend in list(backends):
        for refreshes in list(backend.__dict__.get(ATTRIBUTE, {}).values()):
            for refresh in list(refreshes):
                if refresh.status in ACTIVE:
                    _step(backend, refresh, seconds)
                elif refresh.batch is not None:  # cancelled without waiting: background
                    batches.settle(backend, refresh)


def _step(backend: AutoScalingBackend, refresh: Refresh, seconds: float) -> None:
    group = backend.autoscaling_groups.get(refresh.group)
    if group is None:
        refresh.batch = None
        finish(refresh, "Failed", "The Auto Scaling group was deleted.")
    elif refresh.status == "Cancelling":
        batches.settle(backend, refresh)
        finish(refresh, "Cancelled", "Cancelled by the user.")
    elif not _interrupted(backend, refresh) and not _waiting(refresh, seconds):
        _replace(backend, refresh, group, seconds)


def _interrupted(backend: AutoScalingBackend, refresh: Refresh) -> bool:
    """An alarm in ALARM fails the refresh or rolls it back (True); a rollback first ends
    the refresh's own in-flight batch."""
    rolling_back = refresh.status == "RollbackInProgress"
    if not rolling_back:
        alarm = _alarm_in_alarm(refresh)
        if alarm:
            _fail(backend, refresh, f"CloudWatch alarm {alarm} is in the ALARM state.")
            return True
    if refresh.batch is not None and refresh.batch.rollback != rolling_back:
        batches.abort(backend, refresh)
    return False


def _waiting(refresh: Refresh, seconds: float) -> bool:
    """At a checkpoint, or baking: time passes and nothing is replaced."""
    if refresh.pause_seconds > 0:
        refresh.pause_seconds = max(0.0, refresh.pause_seconds - seconds)
        return True
    if refresh.status == "Baking":
        refresh.bake_seconds += seconds
        if refresh.bake_seconds >= float(refresh.preferences.get("BakeTime", 0)):
            finish(refresh, "Successful", "")
        return True
    return False


def _replace(
    backend: AutoScalingBackend, refresh: Refresh, group: FakeAutoScalingGroup, seconds: float
) -> None:
    """The in-flight batch checked and completed, then the next one started (or the
    refresh, or its rollback, complete)."""
    rolling_back = refresh.status == "RollbackInProgress"
    if refresh.batch is not None:
        if not batches.verify(backend, refresh):
            _stalled(backend, refresh, seconds, FAILED_HEALTH_CHECKS)
            return
        if not rolling_back:
            _checkpoint(refresh)
        if refresh.pause_seconds > 0:
            return
    old = batches.old_instances(refresh, group, rolling_back)
    if not old or (not rolling_back and refresh.stops_short()):
        _complete(refresh, rolling_back)
        return
    widths = batches.widths(refresh, group, len(old), rolling_back)
    if widths is None:
        _stalled(backend, refresh, seconds, NO_ROOM)
        return
    batches.launch(backend, refresh, old, *widths, rolling_back=rolling_back)


def _alarm_in_alarm(refresh: Refresh) -> str | None:
    names = refresh.preferences.get("AlarmSpecification", {}).get("Alarms", [])
    alarms = cloudwatch_backends[refresh.account][refresh.region].alarms
    return next((n for n in names if n in alarms and alarms[n].state_value == "ALARM"), None)


def _stalled(backend: AutoScalingBackend, refresh: Refresh, seconds: float, reason: str) -> None:
    """No replacement this step: the refresh retries for an hour, then fails."""
    refresh.stalled_seconds += seconds
    refresh.reason = reason
    if refresh.stalled_seconds >= ONE_HOUR:
        _fail(backend, refresh, f"{reason} The instance refresh kept retrying for an hour.")
    elif refresh.batch is not None:
        batches.retry(backend, refresh)


def _fail(backend: AutoScalingBackend, refresh: Refresh, reason: str) -> None:
    """Failed, or with AutoRollback rolled back; a failing rollback is RollbackFailed. The
    in-flight batch ends first (a rollback switches the launch template before, so what
    that relaunches is on the previous configuration)."""
    if refresh.status == "RollbackInProgress":
        batches.abort(backend, refresh)
        finish(refresh, "RollbackFailed", reason)
    elif refresh.preferences.get("AutoRollback") and refresh.previous_template is not None:
        start_rollback(backend, refresh, reason)
        batches.abort(backend, refresh)
    else:
        batches.abort(backend, refresh)
        finish(refresh, "Failed", reason)


def _checkpoint(refresh: Refresh) -> None:
    done = 100 * len(refresh.replaced) / max(refresh.total, 1)
    reached = [p for p in refresh.checkpoints if p not in refresh.reached_checkpoints and p <= done]
    if not reached:
        return
    refresh.reached_checkpoints.extend(reached)
    highest = reached[-1]
    if highest < refresh.last_checkpoint:  # the last one ends the refresh: no pause
        delay = int(refresh.preferences.get("CheckpointDelay", 3600))
        refresh.pause_seconds = float(delay)
        publish(
            refresh,
            "Checkpoint Reached",
            CheckpointPercentage=str(highest),
            CheckpointDelay=str(delay),
        )


def _complete(refresh: Refresh, rolling_back: bool) -> None:
    refresh.reason = ""
    if rolling_back:
        finish(refresh, "RollbackSuccessful", refresh.rollback_reason)
    elif float(refresh.preferences.get("BakeTime", 0)) > 0:
        refresh.status, refresh.bake_seconds = "Baking", 0.0
        publish(refresh, "Started Baking")
    else:
        finish(refresh, "Successful", "")
