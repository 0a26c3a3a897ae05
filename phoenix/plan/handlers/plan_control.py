"""Decisions on waiting plan runs, and earlier environments' rollbacks
(phoenix/plan/runtime/control.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from phoenix.kernel.clients import Clients
from phoenix.plan.runtime import control
from phoenix.plan.runtime.settings import PlanSettings

logger = Logger()


def handle(event: Any, settings: PlanSettings, aws: Clients) -> dict[str, Any]:
    event_id = event.get("id") if isinstance(event, dict) else None
    try:
        if isinstance(event, dict) and event.get("detail-type") == "Release Rolled Back":
            rolled_back = parse(event=event, model=control.RolledBack)
            recorded = control.record_rollback(
                rolled_back,
                earlier=settings.earlier,
                dynamodb=aws.dynamodb,
                table=settings.table_name,
            )
            logger.info("rollback of an earlier environment recorded", extra=recorded)
            return {"decided": None, "refused": None, "recorded": recorded}
        request = parse(event=event, model=control.PlanDecision)
        decision = control.decide(
            request,
            environment=settings.environment,
            dynamodb=aws.dynamodb,
            table=settings.table_name,
            stepfunctions=aws.stepfunctions,
        )
    except (ValidationError, control.RefusedError) as refusal:
        logger.warning("request refused", extra={"event_id": event_id, "reason": str(refusal)})
        return {"decided": None, "refused": str(refusal)}
    logger.info("plan decision sent", extra={"event_id": event_id, **decision})
    return {"decided": decision, "refused": None}


@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = PlanSettings.from_environ()
    return handle(event, settings, Clients(settings.region))
