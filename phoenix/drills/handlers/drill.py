"""The rollback drills (phoenix/drills/runtime/drill.py), run by the environment's schedule.

Event: the schedule's input, `{"drill": "run", "environment": "<env>"}`. Anything else
(another environment's, a malformed input) is logged and refused before any call.
Metrics: `RollbackDrillsStarted`, `RollbackDrillsPassed` and `RollbackDrillsFailed` (an
alarm of the environment watches the last).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from phoenix.drills.runtime import drill
from phoenix.drills.runtime.drill import DrillSettings
from phoenix.kernel.clients import Clients
from phoenix.kernel.scheduled import refusal

logger = Logger()
metrics = Metrics()
FAILED_METRIC = "RollbackDrillsFailed"
METRICS: dict[drill.Action, str] = {
    "started": "RollbackDrillsStarted",
    "passed": "RollbackDrillsPassed",
    "failed": FAILED_METRIC,
}


def handle(event: Any, settings: DrillSettings, aws: Clients) -> dict[str, Any]:
    expected = {"drill": "run", "environment": settings.environment}
    if (refused := refusal(event, expected, "the drill function", logger)) is not None:
        return refused
    outcomes = drill.run(aws, settings)
    counts = Counter(o.action for o in outcomes)
    for action, name in METRICS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[action])
    return {"action": "ran", "drills": {o.fleet: [o.action, o.reason] for o in outcomes}}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = DrillSettings.from_environ()
    return handle(event, settings, Clients(settings.region))
