"""The batches an instance refresh replaces instances in, in the embedded AWS: how wide
the next one is and what goes first, and starting, completing, retrying and ending one
in moto's group (local.instance_refresh_clock decides when, on simulated time).

A batch takes two steps: one step launches the new instances (and terminates what may
go first), the next finds them healthy and terminates the instances they replace; the
refresh then starts the next batch. How wide a batch is, and what goes first, follows
the documentation of the minimum and maximum healthy percentages ("Replace instances in
batches based on the minimum and maximum healthy percentages", user guide, "How an
instance refresh works"):
- the group may grow to MaxHealthyPercentage of its desired capacity (rounded down):
  "the maximum percentage of the group that can be in service and healthy, or pending,
  to support your workload when replacing instances" (API reference,
  RefreshPreferences.MaxHealthyPercentage); the new instances of that headroom launch
  before the ones they replace terminate;
- it may drop to MinHealthyPercentage (rounded up): "the minimum percentage of the group
  to keep in service, healthy, and ready to use"; that many go first, terminated as
  their replacements launch ("Terminate and launch - New instances are provisioned at
  the same time your existing instances are terminated", user guide, "Instance
  maintenance policies"). With the defaults (90 and 100) "10 percent of capacity will be
  replaced at a time" (user guide, "How an instance refresh works", Core concepts); a
  larger range replaces more at once; "during any instance maintenance event, your Auto
  Scaling group might have as few as 90 instances and as many as 120" (min 90, max 120,
  desired 100; "Instance maintenance policies", Example scenarios);
- when neither bound leaves room for one instance, RefreshPreferences.MaxHealthyPercentage
  decides: "When MaxHealthyPercentage is explicitly set and it is mathematically
  impossible to replace instances while honoring both MinHealthyPercentage and
  MaxHealthyPercentage bounds simultaneously, Auto Scaling launches a new instance
  before terminating an old one (temporarily exceeding the desired capacity). When
  MaxHealthyPercentage is omitted, Auto Scaling terminates an instance and launches its
  replacement simultaneously" (so both at 100 replace "one instance at a time", "launch
  before terminating", Core concepts);
- never above the group's maximum size: an instance maintenance event changes capacity
  "within that minimum-maximum range", scaling stays "within the scaling limits that you
  defined", and only rebalancing "can exceed your group's size limits" ("Instance
  maintenance policies"). A group at its maximum size with MinHealthyPercentage 100 so
  cannot replace an instance: the refresh waits, and fails after an hour
  (local.instance_refresh_clock);
- each batch also stops at the next checkpoint.

A batch's new instances are healthy at once, except that in a group with ELB health
checks an instance from a failing AMI (local.application) fails them: the batch is then
not complete, and its failing instances are replaced by new ones, step after step, for
as long as the refresh keeps retrying (local.instance_refresh_clock).
"""

from __future__ import annotations

import math

from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
from moto.ec2.models import ec2_backends

from local.application import image_health
from local.instance_refresh import Batch, Refresh


def active_ids(group: FakeAutoScalingGroup) -> list[str]:
    return [s.instance.id for s in group.active_instances()]


def old_instances(refresh: Refresh, group: FakeAutoScalingGroup, rolling_back: bool) -> list[str]:
    """What is left to replace: the refresh's new instances when rolling back, else the
    instances it has not replaced."""
    if rolling_back:
        return [i for i in active_ids(group) if i in refresh.replaced - refresh.rolled_back]
    return [i for i in active_ids(group) if i not in refresh.replaced]


def widths(
    refresh: Refresh, group: FakeAutoScalingGroup, old: int, rolling_back: bool
) -> tuple[int, int] | None:
    """How many of the next batch launch before the instances they replace terminate,
    and how many are terminated as their replacements launch (the module's rules);
    None when no instance can be replaced."""
    desired = int(group.desired_capacity or 0)
    maximum = int(group.max_size or 0)
    ceiling = min(math.floor(desired * refresh.max_healthy / 100), maximum)
    headroom = max(ceiling - desired, 0)
    may_drop = max(desired - math.ceil(desired * refresh.min_healthy / 100), 0)
    if headroom + may_drop == 0:
        if not refresh.max_healthy_set:
            may_drop = 1  # omitted: terminate and launch simultaneously
        elif desired < maximum:
            headroom = 1  # set: launch before terminating, above the desired capacity
        else:
            return None
    width = min(headroom + may_drop, old)
    if not rolling_back:
        upcoming = [p for p in refresh.checkpoints if p not in refresh.reached_checkpoints]
        if upcoming:
            allowed = math.ceil(refresh.total * upcoming[0] / 100) - len(refresh.replaced)
            width = min(width, max(allowed, 1))
    launch_first = min(width, headroom)
    return launch_first, width - launch_first


def launch(
    backend: AutoScalingBackend,
    refresh: Refresh,
    old: list[str],
    launch_first: int,
    terminate_first: int,
    *,
    rolling_back: bool,
) -> None:
    """Start a batch: the first `terminate_first` of it terminate, and as many new
    instances as the whole batch launch from the group's launch template (the refresh's
    target, or the previous one when rolling back)."""
    group = backend.autoscaling_groups[refresh.group]
    base = int(group.desired_capacity or 0)
    replacing = old[: launch_first + terminate_first]
    before = set(active_ids(group))
    for instance_id in replacing[:terminate_first]:
        backend.terminate_instance(instance_id, should_decrement=True)
    backend.set_desired_capacity(refresh.group, base + launch_first)
    refresh.batch = Batch(
        replacing=replacing,
        pending=set(active_ids(group)) - before,
        retiring=replacing[terminate_first:],
        base_desired=base,
        rollback=rolling_back,
    )


def verify(backend: AutoScalingBackend, refresh: Refresh) -> bool:
    """The batch's new instances healthy: the instances they replace that still serve
    terminate, the group is back to its desired capacity and the batch is done."""
    batch = refresh.batch
    assert batch is not None
    group = backend.autoscaling_groups[refresh.group]
    active = set(active_ids(group))
    if _fail_health_checks(backend, group.health_check_type, batch.pending & active):
        return False
    for instance_id in batch.retiring:
        if instance_id in active:
            backend.terminate_instance(instance_id, should_decrement=True)
    if batch.rollback:
        refresh.rolled_back.update(batch.replacing)
    else:
        refresh.replaced.update(batch.pending & active)
    refresh.batch = None
    refresh.stalled_seconds = 0.0
    return True


def retry(backend: AutoScalingBackend, refresh: Refresh) -> None:
    """The batch's failing new instances terminated and replaced (by new ones from the
    same launch template)."""
    batch = refresh.batch
    assert batch is not None
    group = backend.autoscaling_groups[refresh.group]
    before = set(active_ids(group))
    failing = batch.pending & before
    for instance_id in failing:
        backend.terminate_instance(instance_id, should_decrement=False)
    batch.pending = set(active_ids(group)) - (before - failing)


def abort(backend: AutoScalingBackend, refresh: Refresh) -> None:
    """End the in-flight batch: its new instances terminate and the group is back to its
    desired capacity, launching from its launch template for those already terminated."""
    batch = refresh.batch
    if batch is None:
        return
    refresh.batch = None
    group = backend.autoscaling_groups.get(refresh.group)
    if group is None:
        return
    active = set(active_ids(group))
    for instance_id in batch.pending & active:
        backend.terminate_instance(instance_id, should_decrement=True)
    backend.set_desired_capacity(refresh.group, batch.base_desired)


def settle(backend: AutoScalingBackend, refresh: Refresh) -> None:
    """A cancelled refresh's in-flight launches and terminations complete."""
    if refresh.batch is None:
        return
    if refresh.group not in backend.autoscaling_groups or not verify(backend, refresh):
        abort(backend, refresh)


def _fail_health_checks(backend: AutoScalingBackend, check: str | None, launched: set[str]) -> bool:
    if check != "ELB":
        return False
    ec2 = ec2_backends[backend.account_id][backend.region_name]
    images = [ec2.get_instance_by_id(i) for i in launched]
    return any(image_health(ec2, i.image_id) == "failing" for i in images if i is not None)
