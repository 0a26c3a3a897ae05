"""Resuming or abandoning a halted plan run: `phoenix` `Plan Resume Requested` or
`Plan Abandon Requested`.

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

from phoenix.plan.runtime.ledger import HALTED, PlanLedger
from phoenix.plan.runtime.models import Name

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_stepfunctions.client import SFNClient

DECISIONS = {"Plan Resume Requested": "resume", "Plan Abandon Requested": "abandon"}


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
    detail_type: Literal["Plan Resume Requested", "Plan Abandon Requested"] = Field(
        alias="detail-type"
    )
    detail: PlanDecisionDetail


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
    if run.get("status") != HALTED or not token:
        raise RefusedError(f"plan run {detail.run} is {run.get('status')}, not halted")
    if detail.wave is not None and detail.wave != run.get("halted_wave"):
        raise RefusedError(
            f"plan run {detail.run} halted at wave {run.get('halted_wave')}, not {detail.wave}"
        )
    decision = {
        "decision": DECISIONS[request.detail_type],
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
