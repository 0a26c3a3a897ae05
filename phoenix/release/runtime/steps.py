"""What every release step handler shares: its settings, parsing, AWS clients and the
step record (ledger + `Release Step Completed` event + ReleaseStepDuration metric)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import ValidationError

from phoenix.kernel.clients import Clients
from phoenix.kernel.events import EventNotAcceptedError
from phoenix.kernel.ledger import Ledger
from phoenix.kernel.settings import ReleaseSettings
from phoenix.release.runtime import events as release_events
from phoenix.release.runtime.models import MalformedStepError, ReleaseState, StepInput

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

logger = Logger(child=True)


def parse_step(event: Any, actions: set[str]) -> StepInput:
    """The step's input, or MalformedStepError saying what is wrong (nothing called yet)."""
    if not isinstance(event, dict):
        raise MalformedStepError(f"the step input is a {type(event).__name__}, not an object")
    try:
        step = StepInput.model_validate(event)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}"
            for e in error.errors()[:3]
        )
        raise MalformedStepError(f"malformed step input: {problems}") from None
    if step.action not in actions:
        raise MalformedStepError(
            f"unknown action {step.action!r}; expected one of {sorted(actions)}"
        )
    return step


def record(
    aws: Clients,
    settings: ReleaseSettings,
    state: ReleaseState,
    step: str,
    metrics: Any | None = None,
    **detail: Any,
) -> None:
    """Append `step` to the release's ledger item and announce it. Both are best effort:
    the step has done its work, so a failed write (after botocore's retries) or an event
    EventBridge did not accept is logged as a warning and never fails the step."""
    seconds: float | None = None
    try:
        seconds = Ledger(aws.dynamodb, settings.table_name).record_step(
            state.fleet, state.release.id, step=step, detail=detail
        )
    except ClientError as error:
        _warn("step not recorded in the ledger", step, error)
    try:
        release_events.publish(aws.events, "Release Step Completed", state, step=step, **detail)
    except (ClientError, EventNotAcceptedError) as error:
        _warn("step event not sent", step, error)
    if metrics is not None and seconds is not None:
        from aws_lambda_powertools.metrics import MetricUnit  # noqa: PLC0415

        metrics.add_metric(name="ReleaseStepDuration", unit=MetricUnit.Seconds, value=seconds)


def _warn(what: str, step: str, error: Exception) -> None:
    logger.warning(what, extra={"step": step, "error": f"{type(error).__name__}: {error}"})


def run_step(event: Any, actions: set[str], logger: Any, body: Callable[[StepInput], Any]) -> Any:
    """Parse the step's input and run `body`; a malformed input is logged with its reason
    and refused (MalformedStepError) before any AWS call."""
    try:
        step = parse_step(event, actions)
    except MalformedStepError as refusal:
        logger.warning("step input refused", extra={"reason": str(refusal)})
        raise
    logger.append_keys(fleet=step.state.fleet, action=step.action)
    try:
        return body(step)
    except MalformedStepError as refusal:
        logger.warning("step input refused", extra={"reason": str(refusal)})
        raise


StepHandle = Callable[[Any, ReleaseSettings, Clients], Any]


def lambda_entry(handle: StepHandle, logger: Logger, metrics: Metrics) -> Callable[[Any, Any], Any]:
    """A step function's `lambda_handler`: Powertools' context (correlation id = release
    id) and metrics around `handle`, with settings and clients for this invocation."""

    @logger.inject_lambda_context(correlation_id_path="state.release.id")
    @metrics.log_metrics
    def lambda_handler(event: Any, context: Any) -> Any:  # noqa: ARG001
        settings = ReleaseSettings.from_environ()
        return handle(event, settings, Clients(settings.region))

    return lambda_handler
