"""The drift check (phoenix/drift/runtime/check.py), run by the environment's schedule.

Event: the schedule's input, `{"check": "drift", "environment": "<env>"}`. Anything
else (another environment's, a malformed input) is logged and refused before any call.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from phoenix.drift.runtime import check
from phoenix.drift.runtime.check import DriftSettings
from phoenix.kernel.clients import Clients
from phoenix.kernel.scheduled import refusal

logger = Logger()
metrics = Metrics()


def handle(event: Any, settings: DriftSettings, aws: Clients) -> dict[str, Any]:
    expected = {"check": "drift", "environment": settings.environment}
    if (refused := refusal(event, expected, "the drift check", logger)) is not None:
        return refused
    drifted = check.check(aws, settings)
    findings = sum(len(d.findings) for d in drifted)
    metrics.add_metric(name="FleetsDrifted", unit=MetricUnit.Count, value=len(drifted))
    metrics.add_metric(name="DriftFindings", unit=MetricUnit.Count, value=findings)
    return {
        "action": "checked",
        "drifted": {d.fleet: {"findings": len(d.findings), "action": d.action} for d in drifted},
    }


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = DriftSettings.from_environ()
    return handle(event, settings, Clients(settings.region))
