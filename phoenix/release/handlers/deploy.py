"""Deploy by strategy.

Actions:
- `refresh` (rolling, with a task token): store the token for the refresh event
  receiver, then StartInstanceRefresh to the prepared version (a retried step carries
  on with the refresh its first attempt started);
- `await` (with a task token): store a new token (the wait resumes after a poll);
- `poll`: DescribeInstanceRefreshes, the polling fallback when no event came in time;
  a latest refresh that is not this release's fails the step (ForeignRefreshError);
- `scale` (blue_green, canary): the idle slot gets the new version and the active
  slot's capacity.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics

from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import Ledger
from phoenix.kernel.settings import ReleaseSettings
from phoenix.release.runtime import strategy
from phoenix.release.runtime.models import MalformedStepError, RefreshOutcome, StepInput
from phoenix.release.runtime.steps import lambda_entry, record, run_step

logger = Logger()
metrics = Metrics()
POLLS = 3
ACTIONS = {"refresh", "await", "poll", "scale"}


def handle(event: Any, settings: ReleaseSettings, aws: Clients) -> dict[str, Any] | None:
    def body(step: StepInput) -> dict[str, Any] | None:
        state = step.state
        plan = state.need_plan()
        group = state.fleet_spec.slots[plan.target_slot].group
        if step.action in {"refresh", "await"}:
            if step.task_token is None:
                raise MalformedStepError(f"action {step.action} needs a task token")
            version = state.need_version() if step.action == "refresh" else 0
            Ledger(aws.dynamodb, settings.table_name).await_refresh(
                state.fleet,
                state.release.id,
                token=step.task_token,
                group=group,
            )
            if step.action == "await":
                return None
            refresh_id, started = strategy.start_refresh(aws.autoscaling, state, version)
            if not started:
                # A retried step: its first attempt started the refresh (and recorded it).
                logger.info("instance refresh already started", extra={"refresh_id": refresh_id})
                return None
            record(aws, settings, state, "instance refresh started", metrics, refresh_id=refresh_id)
            return None
        if step.action == "poll":
            latest = strategy.polled_refresh(aws.autoscaling, state) or {"Status": "None"}
            left = (state.refresh.polls_left if state.refresh else POLLS) - 1
            outcome = RefreshOutcome(
                status=latest["Status"],
                reason=latest.get("StatusReason", ""),
                polls_left=max(left, 0),
            )
            logger.info("instance refresh polled", extra=outcome.model_dump())
            return outcome.model_dump()
        version = state.need_version()
        strategy.scale_target(aws.autoscaling, aws.ssm, state, version)
        record(
            aws,
            settings,
            state,
            "target slot scaled",
            metrics,
            slot=plan.target_slot,
            version=version,
            desired=plan.capacity.desired,
        )
        return {"desired": plan.capacity.desired}

    result: dict[str, Any] | None = run_step(event, ACTIONS, logger, body)
    return result


lambda_handler = lambda_entry(handle, logger, metrics)
