"""Rollback on an alarm or a request; pause and resume (DESIGN.md section 5).

Events: `CloudWatch Alarm State Change` to ALARM of a fleet's alarm
(`phoenix-<env>-<fleet>-...`), and `phoenix` `Rollback Requested`, `Releases Paused`,
`Releases Resumed` (detail: fleet, requested_by, reason). What a rollback does:
functions/common/rollback.py. A malformed event, an alarm of no fleet here, another
state than ALARM, or a fleet with nothing to roll back is logged and changes nothing;
an alarm storm rolls back once.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from phoenix.kernel import clock, events, ledger
from phoenix.kernel.clients import Clients
from phoenix.kernel.settings import ReleaseSettings
from phoenix.rollback.runtime import logic
from phoenix.rollback.runtime.events import AlarmStateChange, FleetRequest
from phoenix.rollback.runtime.models import RollbackFleet

logger = Logger()
metrics = Metrics()


class Settings(ReleaseSettings):
    state_machine_arn: str
    # fleet name -> RollbackFleet fields (validated when used: at synthesis they hold
    # CloudFormation references, not ARNs yet)
    fleets: Json[dict[str, dict[str, Any]]]

    def fleet(self, name: str) -> RollbackFleet:
        return RollbackFleet.model_validate(self.fleets[name])


class RefusedError(Exception):
    """Nothing to do for this event; the reason is logged."""


def _fleet_of_alarm(name: str, settings: Settings) -> RollbackFleet:
    for fleet in sorted(settings.fleets, key=len, reverse=True):
        if name.startswith(f"phoenix-{settings.environment}-{fleet}-"):
            return settings.fleet(fleet)
    raise RefusedError(f"alarm {name} is no fleet's in {settings.environment}")


def handle(event: Any, settings: Settings, aws: Clients) -> dict[str, Any]:
    try:
        if not isinstance(event, dict):
            raise RefusedError(f"the event is a {type(event).__name__}, not an object")
        if event.get("source") == "aws.cloudwatch":
            alarm = parse(event=event, model=AlarmStateChange)
            if alarm.detail.state.value != "ALARM":
                raise RefusedError(f"alarm state is {alarm.detail.state.value}, not ALARM")
            fleet = _fleet_of_alarm(alarm.detail.alarm_name, settings)
            since = alarm.detail.state.timestamp or alarm.time.isoformat()
            reason = f"alarm {alarm.detail.alarm_name}: {alarm.detail.state.reason}"[:500]
            return roll_back(aws, settings, fleet, reason=reason, since=since, event_id=alarm.id)
        request = parse(event=event, model=FleetRequest)
        if request.detail.fleet not in settings.fleets:
            raise RefusedError(f"no fleet {request.detail.fleet!r} in {settings.environment}")
        fleet = settings.fleet(request.detail.fleet)
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
        set_paused(aws, settings, fleet.name, paused, why)
        return {"action": "paused" if paused else "resumed", "fleet": fleet.name}
    except (ValidationError, RefusedError) as refusal:
        reason = str(refusal)[:500]
        logger.warning("event refused", extra={"reason": reason})
        return {"action": "refused", "reason": reason}


def set_paused(aws: Clients, settings: Settings, fleet: str, paused: bool, why: str) -> None:
    expression = (
        "SET paused = :true, paused_reason = :why" if paused else "REMOVE paused, paused_reason"
    )
    values = {":true": {"BOOL": True}, ":why": {"S": why}} if paused else None
    aws.dynamodb.update_item(
        TableName=settings.table_name,
        Key=ledger.fleet_key(fleet),
        UpdateExpression=expression,
        **({"ExpressionAttributeValues": values} if values else {}),
    )
    logger.info("releases paused" if paused else "releases resumed", extra={"why": why})


def roll_back(
    aws: Clients,
    settings: Settings,
    fleet: RollbackFleet,
    *,
    reason: str,
    since: str,
    event_id: str,
) -> dict[str, Any]:
    item = ledger.fleet_item(aws.dynamodb, settings.table_name, fleet.name)
    decision = logic.decide(item, clock.now())
    logger.append_keys(fleet=fleet.name, release_id=decision.release_id)
    if decision.action == "nothing":
        logger.info("nothing to roll back", extra={"why": decision.why, "reason": reason})
        return {"action": "nothing", "fleet": fleet.name, "reason": decision.why}
    if decision.action == "release":
        return _release_previous(aws, settings, fleet, item=item, reason=reason, event_id=event_id)
    flight = item.get("flight") or {}
    window = item.get("warm_slot") or {}
    claimed = decision.action == "window" and _claim(aws, settings, fleet, decision)
    if decision.action == "window" and not claimed:
        return {"action": "duplicate", "fleet": fleet.name, "release": decision.release_id}
    if decision.action == "in_flight" and fleet.strategy == "rolling":
        rolled = logic.refresh_back(aws.autoscaling, fleet)
        if rolled is None:
            logger.warning("refresh not rolled back here: the release's own path will")
            return {"action": "deferred", "fleet": fleet.name, "release": decision.release_id}
        done = rolled
    else:
        serve, drop = (
            (flight["active_slot"], flight["target_slot"])
            if decision.action == "in_flight"
            else (window["old_slot"], window["new_slot"])
        )
        logic.weights_back(aws.elbv2, fleet, serve, drop)
        done = "traffic restored"
    _time_to_rollback(since)
    if not claimed and not _claim(aws, settings, fleet, decision):
        logger.info("already rolled back by another event", extra={"reason": reason})
        return {"action": "duplicate", "fleet": fleet.name, "release": decision.release_id}
    if decision.action == "in_flight":
        logic.stop_execution(
            aws.stepfunctions, settings.state_machine_arn, decision.release_id, reason
        )
        if fleet.strategy != "rolling":
            logic.empty_slot(
                aws.autoscaling, aws.ssm, settings.environment, fleet, flight["target_slot"]
            )
        good = str(flight["from_ami"])
    else:
        logic.restore_window(aws.ssm, settings.environment, fleet, window)
        logic.empty_slot(aws.autoscaling, aws.ssm, settings.environment, fleet, window["new_slot"])
        good = str(window["previous_ami"])
    ledger.record_step(
        aws.dynamodb,
        settings.table_name,
        fleet.name,
        decision.release_id,
        step="rolled back",
        detail={"how": decision.action, "action": done, "reason": reason},
    )
    ledger.close_release(
        aws.dynamodb,
        settings.table_name,
        fleet.name,
        decision.release_id,
        outcome="rolled back",
        reason=reason,
        good_ami=good,
    )
    if decision.action == "in_flight":
        ledger.release_lock(aws.dynamodb, settings.table_name, fleet.name, decision.release_id)
    body = {
        "release_id": decision.release_id,
        "environment": settings.environment,
        "fleet": fleet.name,
        "strategy": fleet.strategy,
        "to_ami": good,
        "from_ami": flight.get("to_ami") if flight else item.get("last_good_ami"),
        "reason": reason,
        "rollback": decision.action,
    }
    events.put(aws.events, "Release Rolled Back", body)
    metrics.add_metric(name="RollbackCount", unit=MetricUnit.Count, value=1)
    logger.warning("rolled back", extra={"how": decision.action, "done": done, "reason": reason})
    return {"action": decision.action, "fleet": fleet.name, "release": decision.release_id}


def _claim(
    aws: Clients, settings: Settings, fleet: RollbackFleet, decision: logic.Decision
) -> bool:
    return logic.claim(
        aws.dynamodb, settings.table_name, fleet.name, decision.release_id, decision.action
    )


def _time_to_rollback(since: str) -> None:
    try:
        began = clock.parse_time(since)
    except ValueError:
        # Only the metric needs it, and traffic has already moved: never fail here.
        logger.warning("unreadable alarm time; no TimeToRollback", extra={"since": since})
        return
    seconds = max(0.0, (clock.now() - began).total_seconds())
    metrics.add_metric(name="TimeToRollback", unit=MetricUnit.Seconds, value=seconds)


def _release_previous(
    aws: Clients,
    settings: Settings,
    fleet: RollbackFleet,
    *,
    item: dict[str, Any],
    reason: str,
    event_id: str,
) -> dict[str, Any]:
    last = str(item["last_release"])
    if not logic.claim(aws.dynamodb, settings.table_name, fleet.name, last, "release"):
        return {"action": "duplicate", "fleet": fleet.name, "release": last}
    request = {
        "environment": settings.environment,
        "fleet": fleet.name,
        "ami": item["previous_good_ami"],
        "trigger": f"rollback of {last}: {reason}"[:300],
        "event_id": event_id,
        "image": None,
    }
    name = f"rollback-{fleet.name}-{event_id}"[:80]
    aws.stepfunctions.start_execution(
        stateMachineArn=settings.state_machine_arn, name=name, input=json.dumps(request)
    )
    logger.warning("rollback release started", extra={"execution": name, "reason": reason})
    return {"action": "release", "fleet": fleet.name, "release": name}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = Settings.from_environ()
    return handle(event, settings, Clients(settings.region))
