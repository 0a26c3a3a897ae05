"""CloudFormation in the embedded AWS: a stack's status changes become EventBridge events.

CloudFormation sends `CloudFormation Stack Status Change` (source `aws.cloudformation`)
to the account's default event bus each time a stack's status changes (CloudFormation
user guide, "Managing events with Amazon EventBridge" and "Stack Status Change event
detail"). moto sends nothing. Here every status moto records for a stack (its stack-level
events: CREATE_IN_PROGRESS, CREATE_COMPLETE, UPDATE_IN_PROGRESS, UPDATE_COMPLETE,
DELETE_IN_PROGRESS, DELETE_COMPLETE, whether by CreateStack, UpdateStack or a change
set) is published once, in the shape of AWS's sample event: `resources` holds the stack
ID and `detail`:
- `stack-id`: the stack ID (its ARN);
- `status-details`: `status` and `status-reason` (empty when there is none);
- `client-request-token`: empty (moto keeps none).

Not emulated: `CloudFormation Resource Status Change` (one per resource) and the
failure statuses, which moto never reaches (a failing resource fails the API call).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from moto.cloudformation.models import Stack
from moto.events.models import events_backends

DETAIL_TYPE = "CloudFormation Stack Status Change"


def status_change_event(stack: Stack, status: str, reason: str | None) -> dict[str, Any]:
    """The PutEvents entry CloudFormation would send for `stack` reaching `status`."""
    detail = {
        "stack-id": stack.stack_id,
        "status-details": {"status": status, "status-reason": reason or ""},
        "client-request-token": "",
    }
    return {
        "Source": "aws.cloudformation",
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [stack.stack_id],
        "EventBusName": "default",
    }


@functools.cache
def install() -> None:
    """Publish every stack status change to EventBridge (once per process)."""
    Stack._add_stack_event = _publishing(Stack._add_stack_event)  # type: ignore[method-assign]


def _publishing(add_stack_event: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(add_stack_event)
    def added(
        self: Stack,
        resource_status: str,
        resource_status_reason: str | None = None,
        resource_properties: str | None = None,
    ) -> None:
        add_stack_event(self, resource_status, resource_status_reason, resource_properties)
        backend = events_backends[self.account_id][self.region_name]
        backend.put_events([status_change_event(self, resource_status, resource_status_reason)])

    return added
