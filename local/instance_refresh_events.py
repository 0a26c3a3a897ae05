"""The `EC2 Auto Scaling Instance Refresh ...` events of the embedded AWS's instance
refreshes (local.instance_refresh), put on the account's default event bus.

Events, one per status change, as the user guide's "Instance refresh example events and
patterns" gives them (detail InstanceRefreshId and AutoScalingGroupName, resources the
group's ARN): Started (to InProgress), Checkpoint Reached (with CheckpointPercentage and
CheckpointDelay), Succeeded (Successful), Failed, Cancelled (to Cancelled, not on
Cancelling), Rollback Started (RollbackInProgress), Rollback Succeeded
(RollbackSuccessful), Rollback Failed (RollbackFailed); and Started Baking (Baking), which
the EventBridge event reference lists for aws.autoscaling.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from moto.autoscaling.models import autoscaling_backends
from moto.events.models import events_backends

if TYPE_CHECKING:
    from local.instance_refresh import Refresh

# The event of each status a refresh ends in (local.instance_refresh.finish).
EVENTS = {
    "Successful": "Succeeded",
    "Failed": "Failed",
    "Cancelled": "Cancelled",
    "RollbackSuccessful": "Rollback Succeeded",
    "RollbackFailed": "Rollback Failed",
}


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
