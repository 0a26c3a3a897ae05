"""The release's rollback path (every Catch leads here).

blue_green / canary: all traffic back to the active slot (one ModifyListener), then the
target slot scaled to 0. rolling: RollbackInstanceRefresh of this release's refresh, or
a refresh back to the previous version when it already ended (cancelled, failed or
successful); when AWS refuses a rollback, the refresh is cancelled and the step raises
RefreshStillCancellingError, which the state machine retries until it is Cancelled.
Returns `wait: true` when the state machine must wait for a refresh.
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


def handle(event: Any, settings: ReleaseSettings, aws: Clients) -> dict[str, Any]:
    def body(step: StepInput) -> dict[str, Any]:
        state = step.state
        reason = state.error.message if state.error else "rollback requested"
        if state.fleet_spec.strategy == "rolling":
            done = strategy.roll_back_refresh(aws.autoscaling, state)
        else:
            strategy.roll_back_traffic(aws.elbv2, aws.autoscaling, aws.ssm, state)
            done = "traffic"
        logger.warning("release rolled back", extra={"reason": reason, "done": done})
        record(aws, settings, state, "rolled back", metrics, action=done, reason=reason[:500])
        return {"wait": done in {"rollback", "refresh"}, "action": done, "reason": reason[:1000]}

    result: dict[str, Any] = run_step(event, {"run"}, logger, body)
    return result


lambda_handler = lambda_entry(handle, logger, metrics)
