"""Auto Scaling instance refresh in the embedded AWS, following the AWS documentation.

moto has no StartInstanceRefresh, DescribeInstanceRefreshes, CancelInstanceRefresh or
RollbackInstanceRefresh. These add them to moto's Auto Scaling API (so botocore parses
and validates requests and responses from its own model), replace instances in moto's
groups, and publish the `EC2 Auto Scaling Instance Refresh ...` events.

Time is simulated: `instance_refresh_clock.advance(seconds)` moves every refresh on by
that much (the serve command does it on a timer; tests call it). Each step replaces as
many instances as the preferences allow: with MaxHealthyPercentage above 100 it launches
new instances first (up to that headroom) and then terminates as many old ones;
otherwise it terminates up to what MinHealthyPercentage allows and lets the group launch
replacements. It waits `BakeTime` once it has replaced what it replaces, and with
AutoRollback rolls back as soon as one of the AlarmSpecification alarms is in ALARM.
Instances launch and become healthy at once.

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
"""

from __future__ import annotations

import functools
import json
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
from moto.events.models import events_backends

ACTIVE = {"Pending", "InProgress", "Baking", "Cancelling", "RollbackInProgress"}


class InstanceRefreshInProgressError(AutoscalingClientError):
    code = "InstanceRefreshInProgress"


class ActiveInstanceRefreshNotFoundError(AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"


class IrreversibleInstanceRefreshError(AutoscalingClientError):
    code = "IrreversibleInstanceRefresh"


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
    rollback_reason: str = ""

    @property
    def min_healthy(self) -> int:
        return int(self.preferences.get("MinHealthyPercentage", 90))

    @property
    def max_healthy(self) -> int:
        return int(self.preferences.get("MaxHealthyPercentage", 100))

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


def _active(account: str, region: str, group: str) -> Refresh | None:
    return next((r for r in history(account, region, group) if r.status in ACTIVE), None)


def publish(refresh: Refresh, detail_type: str, **extra: str) -> None:
    backend = autoscaling_backends[refresh.account][refresh.region]
    group = backend.autoscaling_groups.get(refresh.group)
    detail = {"InstanceRefreshId": refresh.id, "AutoScalingGroupName": refresh.group, **extra}
    events_backends[refresh.account][refresh.region].put_events(
        [
            {
                "Source": "aws.autoscaling",
                "DetailType": f"EC2 Auto Scaling Instance Refresh {detail_type}",
                "Detail": json.dumps(detail),
                "Resources": [group.arn] if group else [],
                "EventBusName": "default",
            }
        ]
    )


def _use_template(backend: AutoScalingBackend, group_name: str, template: dict[str, Any]) -> None:
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


def _check_template(backend: AutoScalingBackend, target: dict[str, Any]) -> None:
    """The desired launch template and version must exist (Auto Scaling's ValidationError)."""
    template_id = target.get("LaunchTemplateId", "")
    version = str(target.get("Version", "$Default"))
    try:
        template = backend.ec2_backend.get_launch_template(template_id)
    except Exception as error:
        raise ValidationError(
            "You must use a valid fully-formed launch template. The specified launch "
            f"template, with template ID {template_id}, does not exist."
        ) from error
    known = {str(v.number) for v in template.versions} | {"$Latest", "$Default"}
    if version not in known:
        raise ValidationError(
            "You must use a valid fully-formed launch template. The specified version "
            f"{version} of launch template {template_id} does not exist."
        )


# -- the API ------------------------------------------------------------------------------


def validate_preferences(preferences: dict[str, Any], desired: dict[str, Any] | None) -> None:
    """The checks AWS documents for StartInstanceRefresh preferences."""
    minimum = preferences.get("MinHealthyPercentage")
    maximum = preferences.get("MaxHealthyPercentage")
    if minimum is not None and not 0 <= int(minimum) <= 100:
        raise ValidationError("MinHealthyPercentage must be between 0 and 100.")
    if maximum is not None:
        if minimum is None:
            raise ValidationError(
                "You must specify MinHealthyPercentage when you specify MaxHealthyPercentage."
            )
        if not 100 <= int(maximum) <= 200:
            raise ValidationError("MaxHealthyPercentage must be between 100 and 200.")
        if int(maximum) - int(minimum) > 100:
            raise ValidationError(
                "The difference between MaxHealthyPercentage and MinHealthyPercentage "
                "cannot be greater than 100."
            )
    checkpoints = [int(p) for p in preferences.get("CheckpointPercentages", [])]
    if any(not 1 <= p <= 100 for p in checkpoints) or checkpoints != sorted(set(checkpoints)):
        raise ValidationError(
            "CheckpointPercentages must be unique values from 1 to 100 in ascending order."
        )
    if "CheckpointDelay" in preferences and not checkpoints:
        raise ValidationError("CheckpointDelay requires CheckpointPercentages.")
    if preferences.get("AutoRollback"):
        template = (desired or {}).get("LaunchTemplate")
        if not template:
            raise ValidationError("AutoRollback requires a DesiredConfiguration launch template.")
        if str(template.get("Version", "$Default")) in {"$Latest", "$Default"}:
            raise ValidationError(
                "AutoRollback requires an explicit launch template version, not "
                f"{template.get('Version', '$Default')}."
            )


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
    if _active(account, region, group_name):
        raise InstanceRefreshInProgressError(
            "An Instance Refresh is already in progress and blocks the execution of this "
            "Instance Refresh."
        )
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
        _check_template(backend, target)
        _use_template(backend, group_name, target)
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


def describe(refresh: Refresh) -> dict[str, Any]:
    to_update = remaining(refresh)
    described: dict[str, Any] = {
        "InstanceRefreshId": refresh.id,
        "AutoScalingGroupName": refresh.group,
        "Status": refresh.status,
        "StatusReason": refresh.reason,
        "StartTime": refresh.start_time,
        "PercentageComplete": refresh.percentage(),
        "InstancesToUpdate": to_update,
        "ProgressDetails": {
            "LivePoolProgress": {
                "PercentageComplete": refresh.percentage(),
                "InstancesToUpdate": to_update,
            }
        },
        "Preferences": refresh.preferences,
        "Strategy": "Rolling",
    }
    if refresh.desired:
        described["DesiredConfiguration"] = refresh.desired
    if refresh.end_time:
        described["EndTime"] = refresh.end_time
    if refresh.rollback_reason:
        described["RollbackDetails"] = {
            "RollbackReason": refresh.rollback_reason,
            "PercentageCompleteOnRollback": math.floor(
                100 * len(refresh.replaced) / max(refresh.total, 1)
            ),
            "InstancesToUpdateOnRollback": len(refresh.replaced) - len(refresh.rolled_back),
        }
    return described


def cancel(backend: AutoScalingBackend, group_name: str) -> Refresh:
    refresh = _active(backend.account_id, backend.region_name, group_name)
    if refresh is None:
        raise ActiveInstanceRefreshNotFoundError(
            f"No in progress or pending Instance Refresh found for Auto Scaling group {group_name}"
        )
    finish(refresh, "Cancelled", "Cancelled by the user.")
    return refresh


def rollback(backend: AutoScalingBackend, group_name: str, reason: str = "") -> Refresh:
    refresh = _active(backend.account_id, backend.region_name, group_name)
    if refresh is None or refresh.status == "RollbackInProgress":
        raise ActiveInstanceRefreshNotFoundError(
            f"No in progress or pending Instance Refresh found for Auto Scaling group {group_name}"
        )
    if not refresh.desired or refresh.previous_template is None:
        raise IrreversibleInstanceRefreshError(
            "The instance refresh cannot be rolled back: it was started without a "
            "DesiredConfiguration."
        )
    refresh.status = "RollbackInProgress"
    refresh.pause_seconds = 0.0  # a rollback does not wait out a checkpoint
    refresh.rollback_reason = reason or "Rollback requested by the user."
    refresh.reason = refresh.rollback_reason
    _use_template(backend, group_name, refresh.previous_template)
    publish(refresh, "Rollback Started")
    return refresh


# -- progress ------------------------------------------------------------------------------


def remaining(refresh: Refresh) -> int:
    backend = autoscaling_backends[refresh.account][refresh.region]
    group = backend.autoscaling_groups.get(refresh.group)
    if group is None:
        return 0
    active = {s.instance.id for s in group.active_instances()}
    if refresh.status == "RollbackInProgress":
        return len((refresh.replaced & active) - refresh.rolled_back)
    if refresh.last_checkpoint < 100:  # the refresh replaces up to its last checkpoint
        goal = math.ceil(refresh.total * refresh.last_checkpoint / 100)
        return min(len(active - refresh.replaced), max(goal - len(refresh.replaced), 0))
    return len(active - refresh.replaced)


def finish(refresh: Refresh, status: str, reason: str) -> None:
    refresh.status, refresh.reason, refresh.end_time = status, reason, utcnow()
    events = {
        "Successful": "Succeeded",
        "Failed": "Failed",
        "Cancelled": "Cancelled",
        "RollbackSuccessful": "Rollback Succeeded",
        "RollbackFailed": "Rollback Failed",
    }
    publish(refresh, events[status])


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
        refresh = cancel(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        return ActionResult({"InstanceRefreshId": refresh.id})

    def rollback_instance_refresh(self: AutoScalingResponse) -> ActionResult:
        refresh = rollback(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        return ActionResult({"InstanceRefreshId": refresh.id})

    AutoScalingResponse.start_instance_refresh = start_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes  # type: ignore[attr-defined]
    AutoScalingResponse.cancel_instance_refresh = cancel_instance_refresh  # type: ignore[attr-defined]
    AutoScalingResponse.rollback_instance_refresh = rollback_instance_refresh  # type: ignore[attr-defined]
