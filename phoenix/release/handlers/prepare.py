"""Prepare: a new launch template version for the target slot, with the new AMI."""

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
        plan = state.need_plan()
        version = strategy.prepare(aws.ec2, state)
        record(
            aws,
            settings,
            state,
            "launch template version created",
            metrics,
            slot=plan.target_slot,
            version=version,
            source_version=plan.source_version,
        )
        return {"version": version}

    result: dict[str, Any] = run_step(event, {"run"}, logger, body)
    return result


lambda_handler = lambda_entry(handle, logger, metrics)
