"""Decisions on a waiting plan run: resuming or abandoning a halted one (`phoenix`
`Plan Resume Requested`, `Plan Abandon Requested`), approving or rejecting a promoted
image that awaits approval (`Promotion Approved`, `Promotion Rejected`); and the
rollbacks of earlier environments (`Release Rolled Back`), recorded so that a promoted
image with a rolled-back AMI is refused.

The request names the environment, the plan and the run (the plan execution's name), who
asks and why, and may name the halted wave (then a request meant for an earlier halt of
the same run acts nowhere). The decision is sent to the run's waiting task
(SendTaskSuccess) and then recorded in the run's ledger item with who and why; a run
that is not halted, a token Step Functions no longer knows (a duplicate request, or a
run that ended) and a request for another environment are refused with the reason, and
nothing changes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from phoenix.plan.runtime.ledger import AWAITING_APPROVAL, HALTED, PlanLedger
from phoenix.plan.runtime.models import Name

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_stepfunctions.client import SFNClient

DECISIONS = {
    "Plan Resume Requested": "resume",
    "Plan Abandon Requested": "abandon",
    "Promotion Approved": "approve",
    "Promotion Rejected": "reject",
}
# The status a run must be in for each decision.
WAITING = {
    "resume": HALTED,
    "abandon": HALTED,
    "approve": AWAITING_APPROVAL,
    "reject": AWAITING_APPROVAL,
}


class RefusedError(Exception):
    """The request asks for nothing phoenix should do; the reason is logged."""


class PlanDecisionDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: Name
    plan: Name
    run: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    wave: str | None = Field(default=None, max_length=80)
    requested_by: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=1000)


class PlanDecision(EventBridgeModel):
    source: Literal["phoenix"]
    detail_type: Literal[
        "Plan Resume Requested",
        "Plan Abandon Requested",
        "Promotion Approved",
        "Promotion Rejected",
    ] = Field(alias="detail-type")
    detail: PlanDecisionDetail


class RolledBackDetail(BaseModel):
    """What the controller says of a rollback (the rest of the detail is not read)."""

    model_config = ConfigDict(extra="ignore")

    environment: Name
    fleet: Name
    release_id: str = Field(min_length=1, max_length=200)
    rolled_back_ami: str = Field(pattern=r"^ami-[0-9a-f]{8,17}$")
    reason: str = Field(default="", max_length=2000)


class RolledBack(EventBridgeModel):
    """`Release Rolled Back` of an earlier environment (in its account and region)."""

    source: Literal["phoenix"]
    detail_type: Literal["Release Rolled Back"] = Field(alias="detail-type")
    detail: RolledBackDetail


def record_rollback(
    event: RolledBack, *, earlier: list[str], dynamodb: DynamoDBClient, table: str
) -> dict[str, Any]:
    """Remember that an earlier environment rolled the AMI back: this environment never
    releases it by promotion. Another environment's rollback is refused."""
    detail = event.detail
    if detail.environment not in earlier:
        raise RefusedError(
            f"environment {detail.environment} is not before this one "
            f"(earlier: {', '.join(earlier) or 'none'})"
        )
    facts = {
        "environment": detail.environment,
        "account": event.account,
        "region": event.region,
        "fleet": detail.fleet,
        "release_id": detail.release_id,
        "reason": detail.reason,
        "at": event.time.isoformat(),
    }
    PlanLedger(dynamodb, table).rolled_back(
        detail.rolled_back_ami, detail.environment, detail.release_id, facts
    )
    return {"ami": detail.rolled_back_ami, **facts}


def decide(
    request: PlanDecision,
    *,
    environment: str,
    dynamodb: DynamoDBClient,
    table: str,
    stepfunctions: SFNClient,
) -> dict[str, Any]:
    detail = request.detail
    if detail.environment != environment:
        raise RefusedError(
            f"the request is for environment {detail.environment}, not {environment}"
        )
    ledger = PlanLedger(dynamodb, table)
    run = ledger.run_item(detail.plan, detail.run)
    if not run:
        raise RefusedError(f"plan {detail.plan} has no run {detail.run}")
    token = run.get("task_token")
    kind = DECISIONS[request.detail_type]
    if run.get("status") != WAITING[kind] or not token:
        raise RefusedError(f"plan run {detail.run} is {run.get('status')}, not {WAITING[kind]}")
    if detail.wave is not None and detail.wave != run.get("halted_wave"):
        raise RefusedError(
            f"plan run {detail.run} halted at wave {run.get('halted_wave')}, not {detail.wave}"
        )
    decision = {
        "decision": kind,
        "by": detail.requested_by,
        "reason": detail.reason,
        "wave": run.get("halted_wave"),
    }
    try:
        stepfunctions.send_task_success(taskToken=str(token), output=json.dumps(decision))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
            raise RefusedError(
                f"plan run {detail.run} no longer waits for a decision ({code})"
            ) from None
        raise
    ledger.decide(detail.plan, detail.run, str(token), decision)
    return decision
