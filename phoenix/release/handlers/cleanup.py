"""Release cleanup: an execution that ended without its own end handling is put right;
and the state machine's `HoldLock` step (what both do: phoenix/release/runtime/cleanup.py).

Events: `Step Functions Execution Status Change` with status TIMED_OUT, ABORTED or FAILED
for this environment's release state machine. A malformed event, another state machine's,
another status or an input naming no fleet of the registry here is logged and refused
before any change.
The step input (`{"action": "hold", "state", "entered_at"}`) is the state machine's.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from phoenix.kernel import clock
from phoenix.kernel.clients import Clients
from phoenix.release.runtime import cleanup
from phoenix.release.runtime.cleanup import CleanupSettings
from phoenix.release.runtime.steps import run_step

logger = Logger()
metrics = Metrics()
METRIC = {"failed": "ReleasesFailed", "rolled back": "ReleasesRolledBack"}


def handle(event: Any, settings: CleanupSettings, aws: Clients) -> dict[str, Any]:
    if isinstance(event, dict) and "action" in event and "source" not in event:
        held: dict[str, Any] = run_step(
            event, {"hold"}, logger, lambda step: cleanup.hold_lock(aws, settings, step.state)
        )
        return held
    try:
        ended = cleanup.parse(event, settings, aws.ssm)
    except (ValidationError, cleanup.RefusedError) as refusal:
        reason = str(refusal)[:500]
        logger.warning("event refused", extra={"reason": reason})
        return {"action": "refused", "reason": reason}
    logger.set_correlation_id(ended.release_id)
    logger.append_keys(fleet=ended.fleet.name, status=ended.status)
    outcome = cleanup.clean_up(aws, settings, ended)
    if outcome.closed:
        seconds = (clock.now() - ended.started_at).total_seconds()
        metrics.add_metric(name="ReleaseDuration", unit=MetricUnit.Seconds, value=seconds)
        metrics.add_metric(name=METRIC[outcome.closed], unit=MetricUnit.Count, value=1)
    return outcome.response()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = CleanupSettings.from_environ()
    return handle(event, settings, Clients(settings.region))
