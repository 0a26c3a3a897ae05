"""DescribeInstanceRefreshes in the embedded AWS (local.instance_refresh): a refresh as
the API reference's InstanceRefresh type gives it.

Status and StatusReason, StartTime and, once ended, EndTime; PercentageComplete and
InstancesToUpdate, also as ProgressDetails.LivePoolProgress; the Preferences and
DesiredConfiguration it was started with; and, once it rolls back, RollbackDetails
(RollbackReason, PercentageCompleteOnRollback, InstancesToUpdateOnRollback). Instances
to update are those the refresh has yet to replace: up to its last checkpoint, the share
of the group it replaces (see local.instance_refresh), or while it rolls back, the
instances it launched that are not yet replaced again.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from moto.autoscaling.models import autoscaling_backends

if TYPE_CHECKING:
    from local.instance_refresh import Refresh


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
            "PercentageCompleteOnRollback": refresh.percentage_on_rollback,
            "InstancesToUpdateOnRollback": len(refresh.replaced) - len(refresh.rolled_back),
        }
    return described


def remaining(refresh: Refresh) -> int:
    backend = autoscaling_backends[refresh.account][refresh.region]
    group = backend.autoscaling_groups.get(refresh.group)
    if group is None:
        return 0
    active = {s.instance.id for s in group.active_instances()}
    if refresh.status == "RollbackInProgress":
        return len((refresh.replaced & active) - refresh.rolled_back)
    pending = refresh.batch.pending if refresh.batch else set()
    old = active - refresh.replaced - pending
    if refresh.last_checkpoint < 100:  # the refresh replaces up to its last checkpoint
        goal = math.ceil(refresh.total * refresh.last_checkpoint / 100)
        return min(len(old), max(goal - len(refresh.replaced), 0))
    return len(old)
