"""Simulated time for instance refreshes: each step replaces what the preferences allow.

See local.instance_refresh for the API and the rules this follows.
"""

from __future__ import annotations

import math

from moto.autoscaling.models import AutoScalingBackend, autoscaling_backends
from moto.cloudwatch.models import cloudwatch_backends
from moto.ec2.models import ec2_backends

from local.application import image_health
from local.instance_refresh import (
    ACTIVE,
    ATTRIBUTE,
    Refresh,
    backends,
    finish,
    publish,
    rollback,
)

# -- time ------------------------------------------------------------------------------------


def advance(seconds: float = 60.0) -> None:
    """Move every active refresh on by `seconds` of simulated time."""
    for backend in list(backends):
        for refreshes in list(backend.__dict__.get(ATTRIBUTE, {}).values()):
            for refresh in refreshes:
                if refresh.status in ACTIVE:
                    _step(refresh, seconds)


def _alarm_in_alarm(refresh: Refresh) -> str | None:
    names = refresh.preferences.get("AlarmSpecification", {}).get("Alarms", [])
    alarms = cloudwatch_backends[refresh.account][refresh.region].alarms
    return next((n for n in names if n in alarms and alarms[n].state_value == "ALARM"), None)


def _step(refresh: Refresh, seconds: float) -> None:
    backend = autoscaling_backends[refresh.account][refresh.region]
    group = backend.autoscaling_groups.get(refresh.group)
    if group is None:
        finish(refresh, "Failed", "The Auto Scaling group was deleted.")
        return
    rolling_back = refresh.status == "RollbackInProgress"
    if not rolling_back and refresh.preferences.get("AutoRollback"):
        alarm = _alarm_in_alarm(refresh)
        if alarm:
            rollback(backend, refresh.group, f"Alarm {alarm} is in ALARM state.")
            rolling_back = True
    if refresh.pause_seconds > 0:
        refresh.pause_seconds = max(0.0, refresh.pause_seconds - seconds)
        return
    active = [s.instance.id for s in group.active_instances()]
    if rolling_back:
        old = [i for i in active if i in refresh.replaced and i not in refresh.rolled_back]
    else:
        old = [i for i in active if i not in refresh.replaced]
    if not old or (not rolling_back and refresh.stops_short()):
        _complete(refresh, seconds, rolling_back)
        return
    batch = _batch_size(refresh, group.desired_capacity or len(active), len(old), rolling_back)
    if batch <= 0:
        return
    launched = _replace(backend, refresh.group, old[:batch])
    if launched is None:
        _failed_health_checks(backend, refresh, rolling_back)
        return
    (refresh.rolled_back if rolling_back else refresh.replaced).update(launched)
    if rolling_back:
        refresh.rolled_back.update(old[:batch])
    else:
        _checkpoint(refresh)


def _batch_size(refresh: Refresh, desired: int, old: int, rolling_back: bool) -> int:
    headroom = math.floor(desired * refresh.max_healthy / 100) - desired
    may_drop = desired - math.ceil(desired * refresh.min_healthy / 100)
    batch = max(headroom if headroom > 0 else may_drop, 1)
    if not rolling_back:
        upcoming = [p for p in refresh.checkpoints if p not in refresh.reached_checkpoints]
        if upcoming:
            allowed = math.ceil(refresh.total * upcoming[0] / 100) - len(refresh.replaced)
            batch = min(batch, max(allowed, 0))
    return min(batch, old)


def _replace(backend: AutoScalingBackend, group_name: str, old: list[str]) -> set[str] | None:
    """Launch as many new instances as `old`, then terminate `old`: the new ones are
    launched from the group's current launch template (the refresh's target). When the
    group uses ELB health checks and a new instance fails them (its AMI's health profile
    is `failing`), the new instances are terminated instead, `old` keeps serving, and
    the result is None: AWS fails the refresh (or rolls it back) in that case."""
    group = backend.autoscaling_groups[group_name]
    before = {s.instance.id for s in group.active_instances()}
    desired = group.desired_capacity or len(before)
    room = desired + len(old) <= (group.max_size or 0)
    if room:
        backend.set_desired_capacity(group_name, desired + len(old))
        launched = {s.instance.id for s in group.active_instances()} - before
        if _fail_health_checks(backend, group.health_check_type, launched):
            for instance_id in launched:
                backend.terminate_instance(instance_id, should_decrement=True)
            return None
        for instance_id in old:
            backend.terminate_instance(instance_id, should_decrement=True)
    else:
        for instance_id in old:
            backend.terminate_instance(instance_id, should_decrement=False)
    return {s.instance.id for s in group.active_instances()} - before


def _failed_health_checks(
    backend: AutoScalingBackend, refresh: Refresh, rolling_back: bool
) -> None:
    reason = "New instances failed their Elastic Load Balancing health checks."
    if refresh.preferences.get("AutoRollback") and not rolling_back:
        rollback(backend, refresh.group, reason)
    else:
        finish(refresh, "Failed", reason)


def _fail_health_checks(backend: AutoScalingBackend, check: str | None, launched: set[str]) -> bool:
    if check != "ELB":
        return False
    ec2 = ec2_backends[backend.account_id][backend.region_name]
    images = [ec2.get_instance_by_id(i) for i in launched]
    return any(image_health(ec2, i.image_id) == "failing" for i in images if i is not None)


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


def _complete(refresh: Refresh, seconds: float, rolling_back: bool) -> None:
    if rolling_back:
        finish(refresh, "RollbackSuccessful", refresh.rollback_reason)
        return
    bake_time = float(refresh.preferences.get("BakeTime", 0))
    if refresh.bake_seconds < bake_time:
        refresh.status = "Baking"
        refresh.bake_seconds += seconds
        return
    finish(refresh, "Successful", "")
