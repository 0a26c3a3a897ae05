"""Rollback on an alarm or a request; pause and resume.

Events: `CloudWatch Alarm State Change` to ALARM of a fleet's alarm
(`phoenix-<env>-<fleet>-...`), and `phoenix` `Rollback Requested`, `Releases Paused`,
`Releases Resumed` (detail: fleet, requested_by, reason), and a person's decision on a
held canary step, `Canary Step Approved` or `Canary Step Rejected`
(phoenix/rollback/runtime/approval.py). What a rollback does:
phoenix/rollback/runtime/logic.py. A malformed event, an alarm of no fleet here, another
state than ALARM, or a fleet with nothing to roll back is logged and changes nothing;
the fleets are read from the registry (phoenix.kernel.registry);
an alarm storm rolls back once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import Ledger
from phoenix.kernel.names import Slot
from phoenix.kernel.registry import fleet_of_resource, read_fleet
from phoenix.rollback.runtime import approval, logic
from phoenix.rollback.runtime.events import AlarmStateChange, FleetRequest
from phoenix.rollback.runtime.models import RollbackFleet, RollbackSettings

if TYPE_CHECKING:
    from types_boto3_ssm.client import SSMClient

logger = Logger()
metrics = Metrics()


class RefusedError(Exception):
    """Nothing to do for this event; the reason is logged."""


def _fleet_of_alarm(ssm: SSMClient, name: str, environment: str) -> tuple[RollbackFleet, str]:
    """The fleet an alarm (`phoenix-<env>-<fleet>-<rest>`) is of, from the registry, with
    `<rest>`."""
    found = fleet_of_resource(ssm, environment, name)
    if found is None:
        raise RefusedError(f"alarm {name} is no fleet's in {environment}")
    spec, rest = found
    return RollbackFleet.of_spec(spec), rest


def _slots_of_alarm(rest: str, fleet: RollbackFleet) -> set[Slot]:
    """The slots whose targets an alarm counts (`phoenix-<env>-<fleet>[-<slot>]-<what>`,
    phoenix/fleet/alarms.py): a slot's alarm, its slot; the fleet's unhealthy-hosts alarm,
    every slot (it adds up each target group's unhealthy targets, serving or not); the
    fleet's 5xx and latency alarms count only traffic the load balancer served: none."""
    first = rest.partition("-")[0]
    if first == "blue":
        return {"blue"}
    if first == "green":
        return {"green"}
    return set(fleet.slots) if rest.endswith("unhealthy-hosts") else set()


def handle(event: Any, settings: RollbackSettings, aws: Clients) -> dict[str, Any]:
    try:
        if not isinstance(event, dict):
            raise RefusedError(f"the event is a {type(event).__name__}, not an object")
        if event.get("source") == "aws.cloudwatch":
            alarm = parse(event=event, model=AlarmStateChange)
            if alarm.detail.state.value != "ALARM":
                raise RefusedError(f"alarm state is {alarm.detail.state.value}, not ALARM")
            fleet, rest = _fleet_of_alarm(aws.ssm, alarm.detail.alarm_name, settings.environment)
            since = alarm.detail.state.timestamp or alarm.time.isoformat()
            reason = f"alarm {alarm.detail.alarm_name}: {alarm.detail.state.reason}"[:500]
            horizon = timedelta(hours=settings.alarm_rollback_horizon_hours)
            slots = _slots_of_alarm(rest, fleet)
            return roll_back(
                aws,
                settings,
                fleet,
                reason=reason,
                since=since,
                event_id=alarm.id,
                horizon=horizon,
                alarm_slots=slots,
            )
        if str(event.get("detail-type")) in approval.DECISIONS:
            decision = parse(event=event, model=approval.StepDecision)
            ledger = Ledger(aws.dynamodb, settings.table_name)
            decided = approval.decide(aws, ledger, decision)
            logger.info("canary step decided", extra=decided)
            return decided
        request = parse(event=event, model=FleetRequest)
        spec = read_fleet(aws.ssm, settings.environment, request.detail.fleet)
        if spec is None:
            raise RefusedError(f"no fleet {request.detail.fleet!r} in {settings.environment}")
        fleet = RollbackFleet.of_spec(spec)
        who = f"requested by {request.detail.requested_by}"
        why = f"{who}: {request.detail.reason}" if request.detail.reason else who
        if request.detail_type == "Rollback Requested":
            return roll_back(
                aws,
                settings,
                fleet,
                reason=why,
                since=request.time.isoformat(),
                event_id=request.id,
            )
        paused = request.detail_type == "Releases Paused"
        Ledger(aws.dynamodb, settings.table_name).set_paused(fleet.name, paused=paused, why=why)
        logger.info("releases paused" if paused else "releases resumed", extra={"why": why})
        return {"action": "paused" if paused else "resumed", "fleet": fleet.name}
    except (ValidationError, RefusedError, approval.DecisionRefusedError) as refusal:
        reason = str(refusal)[:500]
        logger.warning("event refused", extra={"reason": reason})
        return {"action": "refused", "reason": reason}


def _controller(settings: RollbackSettings, aws: Clients) -> logic.Controller:
    return logic.Controller(
        aws=aws,
        ledger=Ledger(aws.dynamodb, settings.table_name),
        environment=settings.environment,
        state_machine_arn=settings.state_machine_arn,
    )


def roll_back(
    aws: Clients,
    settings: RollbackSettings,
    fleet: RollbackFleet,
    *,
    reason: str,
    since: str,
    event_id: str,
    horizon: timedelta | None = None,
    alarm_slots: set[Slot] | None = None,
) -> dict[str, Any]:
    outcome = logic.roll_back(
        _controller(settings, aws),
        fleet,
        reason=reason,
        since=since,
        event_id=event_id,
        horizon=horizon,
        alarm_slots=alarm_slots,
    )
    if outcome.time_to_rollback is not None:
        metrics.add_metric(
            name="TimeToRollback", unit=MetricUnit.Seconds, value=outcome.time_to_rollback
        )
    if outcome.action in {"in_flight", "window"}:
        metrics.add_metric(name="RollbackCount", unit=MetricUnit.Count, value=1)
    return outcome.response()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = RollbackSettings.from_environ()
    return handle(event, settings, Clients(settings.region))
