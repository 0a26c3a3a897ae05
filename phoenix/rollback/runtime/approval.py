"""A person's decision on a held canary step: `Canary Step Approved` or `Canary Step
Rejected` (detail: fleet, requested_by, reason, and optionally the release id).

A canary step whose judgment stayed marginal after its extensions holds, when its fleet
says `when_marginal: hold`, on a task token kept on the fleet item (the release's
`AwaitApproval`). The decision first takes that token in one conditional write, so a
duplicate or a concurrent decision acts once; then it answers the token: approval
(SendTaskSuccess) moves the release on to its next step, rejection (SendTaskFailure,
error `CanaryStepRejected`) sends it down its rollback path with who rejected it and
why as the reason. Each is recorded in the release's ledger item. A fleet that awaits
no decision, a request naming another release, and a token Step Functions no longer
knows (the release ended: rolled back by an alarm, or timed out) are refused with the
reason, and nothing changes. An answer Step Functions did not take (throttled past
botocore's retries) gives the token back, while the release holds the lock, and fails
the invocation: Lambda's retry of the event decides again.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from phoenix.kernel.approval import give_back, take_approval
from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import Ledger

DECISIONS = {"Canary Step Approved": "approved", "Canary Step Rejected": "rejected"}
REJECTED_ERROR = "CanaryStepRejected"
# What SendTaskSuccess and SendTaskFailure answer for a token no task waits on any more
# (Step Functions API reference, SendTaskSuccess, Errors).
GONE = ("TaskDoesNotExist", "TaskTimedOut", "InvalidToken")


class DecisionRefusedError(Exception):
    """Nothing to decide: the reason is logged and nothing changes."""


class StepDecisionDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fleet: str = Field(pattern=r"^[a-z][a-z0-9-]{0,23}$")
    requested_by: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500)
    release_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,80}$")


class StepDecision(EventBridgeModel):
    """`phoenix` `Canary Step Approved` or `Canary Step Rejected`."""

    source: Literal["phoenix"]
    detail_type: Literal["Canary Step Approved", "Canary Step Rejected"] = Field(
        alias="detail-type"
    )
    detail: StepDecisionDetail


def decide(aws: Clients, ledger: Ledger, request: StepDecision) -> dict[str, Any]:
    """Answer the fleet's held step with the request's decision (see the module)."""
    detail = request.detail
    held = ledger.fleet_item(detail.fleet).get("approval")
    if not isinstance(held, dict) or not held.get("token"):
        raise DecisionRefusedError(f"fleet {detail.fleet} has no canary step awaiting approval")
    release = str(held.get("release"))
    if detail.release_id is not None and detail.release_id != release:
        raise DecisionRefusedError(
            f"fleet {detail.fleet} awaits approval for release {release}, not {detail.release_id}"
        )
    token = str(held["token"])
    if not take_approval(ledger, detail.fleet, token):
        raise DecisionRefusedError(f"release {release} was decided already")
    decision = DECISIONS[request.detail_type]
    said = {"by": detail.requested_by, "reason": detail.reason}
    try:
        if decision == "approved":
            aws.stepfunctions.send_task_success(
                taskToken=token, output=json.dumps({"decision": decision, **said})
            )
        else:
            aws.stepfunctions.send_task_failure(
                taskToken=token,
                error=REJECTED_ERROR,
                cause=f"canary step rejected by {detail.requested_by}: {detail.reason}"[:500],
            )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in GONE:
            raise DecisionRefusedError(
                f"release {release} no longer awaits approval ({code})"
            ) from None
        # not answered (after botocore's retries): the token goes back while the release
        # still holds the lock, so the event's retry can decide
        give_back(ledger, detail.fleet, held)
        raise
    ledger.record_step(detail.fleet, release, step=f"canary step {decision}", detail=said)
    return {"action": decision, "fleet": detail.fleet, "release_id": release, **said}
