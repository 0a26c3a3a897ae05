"""A plan execution's steps (what each does: phoenix/plan/runtime/run.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from phoenix.kernel.clients import Clients
from phoenix.plan.runtime import promotion, run
from phoenix.plan.runtime.models import ItemStep, PlanStep
from phoenix.plan.runtime.settings import PlanSettings

logger = Logger()
PLAN_STEPS = {
    "start": run.start,
    "window": run.window,
    "outcome": run.outcome,
    "requests": run.requests,
    "halt": run.halt,
    "approval": promotion.approval,
    "promotable": promotion.promotable,
}
OUTCOMES = {"succeeded", "abandoned", "failed", "rejected"}
ITEM_STEPS = {
    "may_start": run.may_start,
    "start_release": run.start_release,
    "check_release": run.check_release,
    "mark_failed": run.mark_failed,
}
PLAN_ACTIONS = set(PLAN_STEPS) | OUTCOMES


class MalformedPlanStepError(Exception):
    """The step's input is not what the plan's definition sends; nothing was called."""


def handle(event: Any, settings: PlanSettings, aws: Clients) -> dict[str, Any]:
    action = event.get("action") if isinstance(event, dict) else None
    try:
        if action in ITEM_STEPS:
            item = ItemStep.model_validate(event)
            logger.append_keys(fleet=item.item.fleet, region=item.item.region, action=action)
            return ITEM_STEPS[action](aws, settings, item)
        if action not in PLAN_ACTIONS:
            known = sorted(PLAN_ACTIONS | set(ITEM_STEPS))
            raise MalformedPlanStepError(f"unknown action {action!r}; expected one of {known}")
        step = PlanStep.model_validate(event)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}"
            for e in error.errors()[:3]
        )
        logger.warning("step input refused", extra={"reason": problems})
        raise MalformedPlanStepError(f"malformed plan step input: {problems}") from None
    except MalformedPlanStepError as refusal:
        logger.warning("step input refused", extra={"reason": str(refusal)})
        raise
    logger.append_keys(plan=step.state.plan, run=step.state.run.id, action=action)
    if action in PLAN_STEPS:
        return PLAN_STEPS[action](aws, settings, step)
    return run.finish(aws, settings, step, str(action))


@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = PlanSettings.from_environ()
    return handle(event, settings, Clients(settings.region))
