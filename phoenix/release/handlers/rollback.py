"""The release's rollback path (every Catch leads here).

blue_green / canary: all traffic back to the active slot (one ModifyListener), then the
target slot scaled to 0. rolling: RollbackInstanceRefresh of this release's refresh, or
a refresh back to the previous version when it already ended (cancelled, failed or
successful); when AWS refuses a rollback, the refresh is cancelled and the step raises
RefreshStillCancellingError, which the state machine retries until it is Cancelled.
Returns `wait: true` and the refresh's id when the state machine must wait for a refresh.

Action `poll` (rolling): that refresh, read after its event or when none came in time
(strategy.poll_rollback): whether the fleet is back, and polls left while it runs.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics

from phoenix.kernel.clients import Clients
from phoenix.kernel.settings import ReleaseSettings
from phoenix.release.runtime import strategy
from phoenix.release.runtime.models import StepInput
from phoenix.release.runtime.steps import lambda_entry, record, run_step

logger = Logger()
metrics = Metrics()
# Polls of a rollback's refresh still running, a Wait apart (as the forward refresh's).
POLLS = 3
ACTIONS = {"run", "poll"}


def handle(event: Any, settings: ReleaseSettings, aws: Clients) -> dict[str, Any]:
    def body(step: StepInput) -> dict[str, Any]:
        state = step.state
        if step.action == "poll":
            polled = strategy.poll_rollback(aws.autoscaling, state, POLLS)
            logger.info("rollback refresh polled", extra=polled.model_dump())
            return polled.model_dump()
        reason = state.error.message if state.error else "rollback requested"
        refresh_id: str | None = None
        if state.fleet_spec.strategy == "rolling":
            done, refresh_id = strategy.roll_back_refresh(aws.autoscaling, state)
        else:
            strategy.roll_back_traffic(aws.elbv2, aws.autoscaling, aws.ssm, state)
            done = "traffic"
        logger.warning("release rolled back", extra={"reason": reason, "done": done})
        waited = {"refresh_id": refresh_id} if refresh_id else {}
        record(
            aws, settings, state, "rolled back", metrics, action=done, reason=reason[:500], **waited
        )
        return {
            "wait": refresh_id is not None,
            "action": done,
            "reason": reason[:1000],
            "refresh_id": refresh_id,
        }

    result: dict[str, Any] = run_step(event, ACTIONS, logger, body)
    return result


lambda_handler = lambda_entry(handle, logger, metrics)
