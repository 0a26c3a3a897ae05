"""Auto Scaling instance refresh in the embedded AWS, following the AWS documentation.

moto has no StartInstanceRefresh, DescribeInstanceRefreshes, CancelInstanceRefresh or
RollbackInstanceRefresh. These add them to moto's Auto Scaling API (so botocore parses
and validates requests and responses from its own model), replace instances in moto's
groups (local.instance_refresh_clock, on simulated time), and publish the
`EC2 Auto Scaling Instance Refresh ...` events.

What each call accepts and refuses:
- StartInstanceRefresh refuses, with InstanceRefreshInProgress, a group that has "an
  active instance refresh" (API reference, StartInstanceRefresh, Errors): Pending,
  InProgress, Baking, Cancelling or RollbackInProgress. Its preferences, alarms and
  desired launch template are checked as local.instance_refresh_validation gives
  (ValidationError).
- CancelInstanceRefresh "Cancels an instance refresh or rollback that is in progress. If
  an instance refresh or rollback is not in progress, an ActiveInstanceRefreshNotFound
  error occurs" (API reference): Pending, InProgress, Baking or RollbackInProgress; a
  refresh already Cancelling is refused so. The refresh goes Cancelling, and Cancelled
  once its in-flight launches and terminations complete ("The status of the instance
  refresh is set to Cancelling. After the cancellation is complete, the status of the
  instance refresh is set to Cancelled", user guide, "Cancel an instance refresh"): one
  simulated step later. With WaitForTransitioningInstances false it is Cancelled at once
  and "Any in-flight launches and terminations continue in the background".
- RollbackInstanceRefresh "Cancels an instance refresh that is in progress and rolls
  back any changes that it made" (API reference); "You can roll back an instance
  refresh that is still in progress. You can't roll it back after it's finished" (user
  guide, "Undo changes with a manual or auto rollback"). A refresh Cancelling or already
  rolling back is not in progress: ActiveInstanceRefreshNotFound ("an active instance
  refresh or rollback ... was not found"). IrreversibleInstanceRefresh is only for "a
  desired configuration was not found or an incompatible launch template ... or launch
  template version ($Latest or $Default)" (API reference, Errors).

Checkpoints follow the API reference, RefreshPreferences.CheckpointPercentages (ascending
unique values, 1-100 in botocore's model; "To replace all instances in the Auto Scaling
group, the last number in the array must be 100"), and the user guide's "Add checkpoints to
an instance refresh" (the last value is the share of the group the refresh must replace to
become Successful): https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html
and .../autoscaling/ec2/userguide/asg-adding-checkpoints-instance-refresh.html. A checkpoint
is reached once at least its percentage of the group is new; the refresh pauses
`CheckpointDelay` (default 3600 s) at each checkpoint before the last, sending the event,
and replaces nothing past the last: a last value below 100 ends it Successful (after
BakeTime) with the rest of the group on the old launch template version.

Events, one per status change: local.instance_refresh_events. DescribeInstanceRefreshes'
view of a refresh: local.instance_refresh_describe.
"""

from __future__ import annotations

import functools
import math
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import AutoScalingBackend, autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.core.utils import utcnow

from local.instance_refresh_describe import describe
from local.instance_refresh_events import EVENTS, publish
from local.instance_refresh_validation import check_alarms, check_template, validate_preferences

# "An active instance refresh" blocks another (StartInstanceRefresh, InstanceRefreshInProgress).
ACTIVE = {"Pending", "InProgress", "Baking", "Cancelling", "RollbackInProgress"}
# What RollbackInstanceRefresh rolls back: "an instance refresh that is in progress".
IN_PROGRESS = {"Pending", "InProgress", "Baking"}
# What CancelInstanceRefresh cancels: "an instance refresh or rollback that is in progress".
CANCELLABLE = IN_PROGRESS | {"RollbackInProgress"}


class InstanceRefreshInProgressError(AutoscalingClientError):
    code = "InstanceRefreshInProgress"


class ActiveInstanceRefreshNotFoundError(AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"


class IrreversibleInstanceRefreshError(AutoscalingClientError):
    code = "IrreversibleInstanceRefresh"


@dataclass
class Batch:
    """Instances a refresh (or its rollback) is replacing now: `replacing` are the ones
    it replaces, `pending` the new ones launched for them and not yet found healthy,
    `retiring` those of `replacing` still serving (launched before terminating), ended
    once the pending ones are healthy. The group's desired capacity was `base_desired`
    before the batch."""

    replacing: list[str]
    pending: set[str]
    retiring: list[str]
    base_desired: int
    rollback: bool


@dataclass
class Refresh:
    """One instance refresh and how far it has come."""

    id: str
    group: str
    account: str
    region: str
    preferences: dict[str, Any]
    desired: dict[str, Any] | None
    previous_template: dict[str, Any] | None
    target_template: dict[str, Any] | None
    total: int
    status: str = "InProgress"
    reason: str = ""
    start_time: datetime = field(default_factory=utcnow)
    end_time: datetime | None = None
    replaced: set[str] = field(default_factory=set)
    rolled_back: set[str] = field(default_factory=set)
    reached_checkpoints: list[int] = field(default_factory=list)
    pause_seconds: float = 0.0
    bake_seconds: float = 0.0
    stalled_seconds: float = 0.0
    batch: Batch | None = None
    rollback_reason: str = ""
    percentage_on_rollback: int = 0

    @property
    def min_healthy(self) -> int:
        """Default 90 ("Understand the default values for an instance refresh")."""
        return int(self.preferences.get("MinHealthyPercentage", 90))

    @property
    def max_healthy(self) -> int:
        """Default 100 ("Understand the default values for an instance refresh")."""
        return int(self.preferences.get("MaxHealthyPercentage", 100))

    @property
    def max_healthy_set(self) -> bool:
        """ "Explicitly setting MaxHealthyPercentage to 100 is not equivalent to omitting
        it" (API reference, RefreshPreferences)."""
        return self.preferences.get("MaxHealthyPercentage") is not None

    @property
    def checkpoints(self) -> list[int]:
        return [int(p) for p in self.preferences.get("CheckpointPercentages", [])]

    @property
    def last_checkpoint(self) -> int:
        """The percentage of the group the refresh replaces: the last checkpoint, or 100."""
        return self.checkpoints[-1] if self.checkpoints else 100

    def stops_short(self) -> bool:
        """A last checkpoint below 100 is reached: the refresh replaces no more."""
        return self.last_checkpoint < 100 and self.last_checkpoint in self.reached_checkpoints

    def percentage(self) -> int:
        if self.status.startswith("Rollback"):
            done = len(self.rolled_back)
            return 100 if not self.replaced else math.floor(100 * done / len(self.replaced))
        return 100 if not self.total else math.floor(100 * len(self.replaced) / self.total)


# Refreshes live on moto's backend object, so moto's reset (a new mock, a reset call)
# forgets them with everything else; the weak set finds the backends that have some.
ATTRIBUTE = "_phoenix_instance_refreshes"
backends: weakref.WeakSet[AutoScalingBackend] = weakref.WeakSet()


def history(account: str, region: str, group: str) -> list[Refresh]:
    backend = autoscaling_backends[account][region]
    backends.add(backend)
    by_group: dict[str, list[Refresh]] = backend.__dict__.setdefault(ATTRIBUTE, {})
    return by_group.setdefault(group, [])


def _latest(account: str, region: str, group: str, statuses: set[str]) -> Refresh | None:
    return next((r for r in history(account, region, group) if r.status in statuses), None)


def use_template(backend: AutoScalingBackend, group_name: str, template: dict[str, Any]) -> None:
    """Point the group at a launch template version, as UpdateAutoScalingGroup does."""
    backend.update_auto_scaling_group(
        name=group_name,
        availability_zones=[],
        desired_capacity=None,
        max_size=None,
        min_size=None,
        launch_config_name="",
        launch_template=template,
        vpc_zone_identifier="",
        health_check_period=None,  # type: ignore[arg-type]  # None keeps the group's own
        health_check_type=None,  # type: ignore[arg-type]
    )


# -- the API ------------------------------------------------------------------------------


def start(
    backend: AutoScalingBackend,
    group_name: str,
    strategy: str,
    desired: dict[str, Any] | None,
    preferences: dict[str, Any],
) -> Refresh:
    group = backend.autoscaling_groups.get(group_name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - {group_name}")
    if strategy not in ("", "Rolling"):
        raise ValidationError(f"Strategy {strategy} is not supported by the embedded AWS.")
    validate_preferences(preferences, desired)
    account, region = backend.account_id, backend.region_name
    if _latest(account, region, group_name, ACTIVE):
        raise InstanceRefreshInProgressError(
            "An Instance Refresh is already in progress and blocks the execution of this "
            "Instance Refresh."
        )
    check_alarms(account, region, preferences)
    previous = (
        {
            "LaunchTemplateId": group.ec2_launch_template.id,
            "Version": str(group.launch_template_version),
        }
        if group.ec2_launch_template is not None
        else None
    )
    target = dict((desired or {}).get("LaunchTemplate") or {}) or previous
    if target and target != previous:
        check_template(backend, target)
        use_template(backend, group_name, target)
    refresh = Refresh(
        id=str(uuid.uuid4()),
        group=group_name,
        account=account,
        region=region,
        preferences=preferences,
        desired=desired,
        previous_template=previous,
        target_template=target,
        total=len(group.active_instances()),
    )
    history(account, region, group_name).append(refresh)
    publish(refresh, "Started")
    return refresh


def _not_found(group_name: str) -> ActiveInstanceRefreshNotFoundError:
    return ActiveInstanceRefreshNotFoundError(
        f"No in progress or pending Instance Refresh found for Auto Scaling group {group_name}"
    )


def cancel(backend: AutoScalingBackend, group_name: str, wait: bool = True) -> Refresh:
    """Cancelling now, Cancelled at the next step once the in-flight batch has settled;
    without waiting for transitioning instances, Cancelled at once (the batch settles in
    the background, local.instance_refresh_clock)."""
    refresh = _latest(backend.account_id, backend.region_name, group_name, CANCELLABLE)
    if refresh is None:
        raise _not_found(group_name)
    refresh.pause_seconds = 0.0
    if wait:
        refresh.status, refresh.reason = "Cancelling", "Cancellation requested by the user."
    else:
        finish(refresh, "Cancelled", "Cancelled by the user.")
    return refresh


def rollback(backend: AutoScalingBackend, group_name: str, reason: str = "") -> Refresh:
    refresh = _latest(backend.account_id, backend.region_name, group_name, IN_PROGRESS)
    if refresh is None:
        raise _not_found(group_name)
    if not refresh.desired or refresh.previous_template is None:
        raise IrreversibleInstanceRefreshError(
            "The instance refresh cannot be rolled back: it was started without a "
            "DesiredConfiguration."
        )
    start_rollback(backend, refresh, reason or "Rollback requested by the user.")
    return refresh


def start_rollback(backend: AutoScalingBackend, refresh: Refresh, reason: str) -> None:
    """RollbackInProgress: the group back on its previous launch template; the instances
    the refresh launched are replaced from the next step ("When you receive a successful
    response from this operation, Amazon EC2 Auto Scaling immediately begins replacing
    instances", API reference, RollbackInstanceRefresh)."""
    assert refresh.previous_template is not None
    refresh.percentage_on_rollback = refresh.percentage()
    refresh.status = "RollbackInProgress"
    refresh.pause_seconds = 0.0  # a rollback does not wait out a checkpoint
    refresh.stalled_seconds = 0.0
    refresh.rollback_reason = refresh.reason = reason
    use_template(backend, refresh.group, refresh.previous_template)
    publish(refresh, "Rollback Started")


# -- ending --------------------------------------------------------------------------------


def finish(refresh: Refresh, status: str, reason: str) -> None:
    """The refresh ends in `status` now (its EndTime), sending that status's event."""
    refresh.status, refresh.reason, refresh.end_time = status, reason, utcnow()
    refresh.pause_seconds = 0.0
    publish(refresh, EVENTS[status])


# -- wiring into moto's Auto Scaling API ---------------------------------------------------


@functools.cache
def install() -> None:
    """Add the four instance refresh actions to moto's Auto Scaling (once per process)."""

    def start_instance_refresh(self: AutoScalingResponse) -> ActionResult:
        refresh = start(
            self.autoscaling_backend,
            self._get_param("AutoScalingGroupName"),
            self._get_param("Strategy", ""),
            self._get_param("DesiredConfiguration"),
            self._get_param("Preferences", {}),
        )
        return ActionResult({"InstanceRefreshId": refresh.id})

    def describe_instance_refreshes(self: AutoScalingResponse) -> ActionResult:
        backend = self.autoscaling_backend
        group = self._get_param("AutoScalingGroupName")
        wanted = set(self._get_param("InstanceRefreshIds", []))
        found = history(backend.account_id, backend.region_name, group)
        refreshes = [describe(r) for r in reversed(found) if not wanted or r.id in wanted]
        return ActionResult({"InstanceRefreshes": refreshes})

    def cancel_instance_refresh(self: AutoScalingResponse) -> ActionResult:
        wait = self._get_param("WaitForTransitioningInstances")
        refresh = cancel(
            self.autoscaling_backend,
            self._get_param("AutoScalingGroupName"),
            wait=str(wait).lower() != "false",  # WaitForTransitioningInstances: default true
        )
        return ActionResult({"InstanceRefreshId": refresh.id})

    def rollback_instance_refresh(self: AutoScalingResponse) -> ActionResult:
        refresh = rollback(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        return ActionResult({"InstanceRefreshId": refresh.id})

    AutoScalingResponse.start_instance_refresh = start_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes  # type: ignore[attr-defined]
    AutoScalingResponse.cancel_instance_refresh = cancel_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.rollback_instance_refresh = rollback_instance_refresh  # type: ignore[attr-defined]
