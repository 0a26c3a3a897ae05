"""What every release step handler shares: its settings, parsing, AWS clients and the
step record (ledger + `Release Step Completed` event + ReleaseStepDuration metric)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError

from functions.common import ledger, release_events
from functions.common.release_models import MalformedStepError, ReleaseState, StepInput
from functions.common.settings import FunctionSettings

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics


class ReleaseSettings(FunctionSettings):
    table_name: str
    # Set by the Lambda runtime (a reserved variable), never written by the infrastructure.
    region: str = Field(default="", alias="AWS_REGION", exclude=True)


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


class Clients:
    """boto3 clients made on first use (a path imports and builds only what it calls),
    with botocore's standard retry mode: throttling and transient errors are retried."""

    def __init__(self, region: str, factory: Callable[..., Any] | None = None) -> None:
        self._region = region
        self._factory = factory
        self._made: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._made:
            self._made[service] = self._make(service)
        return self._made[service]

    def _make(self, service: str) -> Any:
        if self._factory is not None:
            return self._factory(service)
        import boto3  # noqa: PLC0415 - lazily: a handler that fails validation never pays
        from botocore.config import Config  # noqa: PLC0415

        retries = Config(retries={"mode": "standard", "max_attempts": 5})
        return boto3.client(service, region_name=self._region or None, config=retries)

    def provide(self, service: str, client: Any) -> None:
        """Use `client` for `service` (tests: a Stubber-wrapped or moto client)."""
        self._made[service] = client


def record(
    aws: Clients,
    settings: ReleaseSettings,
    state: ReleaseState,
    step: str,
    metrics: Any | None = None,
    **detail: Any,
) -> None:
    """Append `step` to the release's ledger item and announce it."""
    seconds = ledger.record_step(
        aws.dynamodb, settings.table_name, state.fleet, state.release.id, step=step, detail=detail
    )
    release_events.publish(aws.events, "Release Step Completed", state, step=step, **detail)
    if metrics is not None:
        from aws_lambda_powertools.metrics import MetricUnit  # noqa: PLC0415

        metrics.add_metric(name="ReleaseStepDuration", unit=MetricUnit.Seconds, value=seconds)


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
