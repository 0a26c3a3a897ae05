"""A plan execution's steps (what each does: phoenix/plan/runtime/run.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from phoenix.kernel.clients import Clients
from phoenix.plan.runtime import run
from phoenix.plan.runtime.models import ItemStep, PlanStep
from phoenix.plan.runtime.settings import PlanSettings

logger = Logger()
PLAN_ACTIONS = {"start", "window", "requests", "halt", "succeeded", "abandoned", "failed"}
ITEM_ACTIONS = {"start_release", "check_release"}


class MalformedPlanStepError(Exception):
    """The step's input is not what the plan's definition sends; nothing was called."""


def handle(event: Any, settings: PlanSettings, aws: Clients) -> dict[str, Any]:
    action = event.get("action") if isinstance(event, dict) else None
    try:
        if action in ITEM_ACTIONS:
            item = ItemStep.model_validate(event)
            logger.append_keys(fleet=item.item.fleet, region=item.item.region, action=action)
            if action == "start_release":
                return run.start_release(settings, item)
            return run.check_release(settings, item)
        if action not in PLAN_ACTIONS:
            raise MalformedPlanStepError(
                f"unknown action {action!r}; expected one of {sorted(PLAN_ACTIONS | ITEM_ACTIONS)}"
            )
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
    steps = {"start": run.start, "window": run.window, "requests": run.requests, "halt": run.halt}
    if action in steps:
        return steps[action](aws, settings, step)
    return run.finish(aws, settings, step, str(action))


@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = PlanSettings.from_environ()
    return handle(event, settings, Clients(settings.region))
