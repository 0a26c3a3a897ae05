"""The end of a release (what each action does: phoenix/release/runtime/finalize.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics

from phoenix.kernel.clients import Clients
from phoenix.kernel.settings import ReleaseSettings
from phoenix.release.runtime import finalize
from phoenix.release.runtime.models import StepInput
from phoenix.release.runtime.steps import lambda_entry, run_step

logger = Logger()
metrics = Metrics()
ACTIONS = {"succeed", "rolled_back", "failed", "rejected", "retire"}


def handle(event: Any, settings: ReleaseSettings, aws: Clients) -> dict[str, Any]:
    def body(step: StepInput) -> dict[str, Any]:
        if step.action == "succeed":
            return finalize.succeed(aws, settings, step.state, metrics)
        if step.action == "retire":
            return finalize.retire(aws, settings, step.state)
        return finalize.conclude(aws, settings, step.state, step.action, metrics)

    result: dict[str, Any] = run_step(event, ACTIONS, logger, body)
    return result


lambda_handler = lambda_entry(handle, logger, metrics)
