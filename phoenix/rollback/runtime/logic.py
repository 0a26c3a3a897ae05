"""Rollback outside the release's own Catch paths: alarms and requests.

What to do is decided from one read of the fleet's ledger item:
- a release in flight (it holds the lock): blue_green/canary put every request back on
  the active slot (one ModifyListener), rolling rolls its refresh back (one
  RollbackInstanceRefresh): those two calls are the critical path. Then the rollback is
  claimed (a conditional write; a second alarm of a storm loses and stops there), the
  execution stopped, the new slot scaled to 0 and the release closed as rolled back;
- no release in flight, inside the rollback window of a blue_green/canary success:
  the rollback is claimed first (the window's end retires the old slot under the
  opposite condition: moving traffic to a slot being retired would be an outage), then
  traffic back to the still-warm old slot (one ModifyListener), the pointer and
  weights restored and the new slot scaled to 0;
- a success whose window has passed (or a rolling one): a new release of the AMI before
  it, marked as a rollback; while that success still holds the lock for a few calls (its
  old slot retiring), the event fails with FleetBusyError and Lambda delivers it again a
  minute later;
- a success closed inside its window whose Succeed step has not yet freed the lock: the
  window rollback, which takes the lock from it (the step closes only while no rollback
  has claimed the release, and gives its parameters back when one has);
- nothing phoenix released, a release that is itself a rollback, or one already rolled
  back: nothing to do (logged).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from phoenix.kernel import clock, events
from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import Ledger
from phoenix.kernel.locks import DRILL_PREFIX
from phoenix.kernel.names import Slot
from phoenix.rollback.runtime import claims, moves
from phoenix.rollback.runtime.models import RollbackFleet

if TYPE_CHECKING:
    pass

Action = Literal["in_flight", "window", "release", "busy", "nothing"]
# The handler's logger (Powertools shares its keys with child loggers).
logger = Logger(child=True)


class FleetBusyError(Exception):
    """The fleet's last release holds its lock for a few calls more (its old slot
    retiring): the event fails, and Lambda delivers it again a minute later (two retries,
    then the undelivered events' queue), when a rollback release can start."""


@dataclass(frozen=True)
class Decision:
    action: Action
    release_id: str = ""
    why: str = ""


def decide(item: dict[str, Any], now: datetime, horizon: timedelta | None = None) -> Decision:
    """What a rollback of this fleet means now, from its ledger item. With `horizon`
    (an alarm's rollback), a success that ended longer ago than that is not rolled
    back: an alarm then is not evidence against a release that served that long."""
    flight = item.get("flight") or {}
    owner = item.get("lock_owner")
    if str(owner or "").startswith(DRILL_PREFIX):
        owner = None  # a rollback drill yields: the rollback release takes its lock
    last = str(item.get("last_release") or "")
    succeeded = bool(last) and item.get("last_outcome") == "succeeded"
    window = item.get("warm_slot") or {}
    warm = window.get("release") == last and now.isoformat() < _comparable(window.get("until"))
    if owner:
        held = _while_held(flight, owner, last, succeeded=succeeded, warm=warm)
        if held is not None:
            return held
    elif not succeeded:
        return Decision("nothing", last, "no successful release to roll back")
    if warm:
        return Decision("window", last)
    if not item.get("previous_good_ami"):
        return Decision("nothing", last, "no earlier AMI to go back to")
    too_old = _beyond(horizon, item, now)
    return Decision("nothing", last, too_old) if too_old else Decision("release", last)


def _while_held(
    flight: dict[str, Any], owner: str, last: str, *, succeeded: bool, warm: bool
) -> Decision | None:
    """What a rollback means while `owner` holds the fleet's lock; None: what it means
    once free (the last release closed as succeeded, finishing its Succeed step inside
    its window: the window rollback may take the lock from it)."""
    if flight.get("release") == owner and not flight.get("rollback"):
        return Decision("in_flight", owner)
    if owner != last or not succeeded:
        # A rollback release in flight (rolling it back would loop), or a release whose
        # flight is not recorded yet (preflight running): nothing has moved the fleet's
        # traffic yet, and the release's own gates apply.
        return Decision("nothing", owner, "the release in flight is a rollback or starting")
    if not warm:
        # Its success closed, the lock held a few calls more: its old slot retiring (or
        # a Succeed step with no window ending). Once free, a rollback release.
        return Decision("busy", owner, "the release's old slot is retiring")
    return None


def _beyond(horizon: timedelta | None, item: dict[str, Any], now: datetime) -> str:
    """Why the last release is beyond the alarm's horizon, or "" when it is not."""
    ended = _comparable(item.get("last_ended_at"))
    if horizon is None or not ended or ended >= (now - horizon).isoformat():
        return ""
    hours = horizon.total_seconds() / 3600
    return f"release {item['last_release']} ended at {ended}, over {hours:g} h ago (alarm horizon)"


def _comparable(moment: Any) -> str:
    return clock.parse_time(str(moment)).isoformat() if moment else ""


@dataclass(frozen=True)
class Controller:
    """What a rollback acts through: the clients, the ledger, the environment's name and
    its release state machine."""

    aws: Clients
    ledger: Ledger
    environment: str
    state_machine_arn: str


@dataclass(frozen=True)
class Outcome:
    """What one event came to: the handler's response, and what its metrics need."""

    action: str
    fleet: str
    release: str | None = None
    reason: str | None = None
    # Seconds from the alarm (or request) to traffic back: set when this event moved it.
    time_to_rollback: float | None = None

    def response(self) -> dict[str, Any]:
        shown = {"release": self.release, "reason": self.reason}
        return {"action": self.action, "fleet": self.fleet} | {
            name: value for name, value in shown.items() if value is not None
        }


def roll_back(
    ctl: Controller,
    fleet: RollbackFleet,
    *,
    reason: str,
    since: str,
    event_id: str,
    horizon: timedelta | None = None,
    alarm_slots: set[Slot] | None = None,
) -> Outcome:
    """Roll `fleet` back as its ledger item says (see the module docstring); `horizon`:
    see decide; `alarm_slots`: the slots whose targets the alarm counts."""
    item = ctl.ledger.fleet_item(fleet.name)
    decision = claims.unfinished(item, event_id) or decide(item, clock.now(), horizon)
    flight = item.get("flight") or {}
    warming = (
        decision.action == "in_flight"
        and fleet.strategy != "rolling"  # a rolling refresh replaces serving instances
        and not flight.get("warm_at")
    )
    if warming and flight.get("target_slot") in (alarm_slots or set()):
        # The new slot serves nothing until it is warm: its alarms (unhealthy hosts
        # while instances boot) are the warm-up gate's to judge, not a reason to stop.
        decision = Decision("nothing", decision.release_id, "the target slot is warming up")
    logger.append_keys(fleet=fleet.name, release_id=decision.release_id)
    if decision.action == "nothing":
        logger.info("nothing to roll back", extra={"why": decision.why, "reason": reason})
        return Outcome("nothing", fleet.name, reason=decision.why)
    if decision.action == "busy":
        raise FleetBusyError(f"{fleet.name}: {decision.why}; to be tried again")
    if decision.action == "release":
        return release_previous(ctl, fleet, item=item, reason=reason, event_id=event_id)
    flight = item.get("flight") or {}
    window = item.get("warm_slot") or {}
    # Delivered again after a failure past its own claim: in flight, traffic moved before
    # the claim and is not moved again; a window's claim comes before its traffic move,
    # which is made again (it sets the same weights) unless the release was closed
    # since (the window gone with it). What is left is finished.
    again = claims.claimed_by(item, event_id)
    claimed = again or (decision.action == "window" and _claim(ctl, fleet, decision, event_id))
    if decision.action == "window" and not claimed:
        return Outcome("duplicate", fleet.name, release=decision.release_id)
    if again and (decision.action == "in_flight" or not window):
        done = "claimed before"
    elif decision.action == "in_flight" and fleet.strategy == "rolling":
        rolled = moves.refresh_back(ctl.aws.autoscaling, fleet)
        if rolled is None:
            logger.warning("refresh not rolled back here: the release's own path will")
            return Outcome("deferred", fleet.name, release=decision.release_id)
        done = rolled
    else:
        serve, drop = (
            (flight["active_slot"], flight["target_slot"])
            if decision.action == "in_flight"
            else (window["old_slot"], window["new_slot"])
        )
        moves.weights_back(ctl.aws.elbv2, fleet, serve, drop)
        done = "traffic restored"
    seconds = _seconds_since(since)
    if not claimed and not _claim(ctl, fleet, decision, event_id):
        return _lost_claim(
            ctl, fleet, decision, flight, reason=reason, since=since, event_id=event_id
        )
    outcome = _finish(ctl, fleet, decision, item, reason=reason, done=done)
    return Outcome(
        outcome.action, fleet.name, release=decision.release_id, time_to_rollback=seconds
    )


def _finish(
    ctl: Controller,
    fleet: RollbackFleet,
    decision: Decision,
    item: dict[str, Any],
    *,
    reason: str,
    done: str,
) -> Outcome:
    """Every step after the claim, each safe to run again, in an order that keeps the lock
    until the last: an event delivered again after a failure here finds its own claim
    (claims.claimed_by) and finishes. The release is told of before it is closed (which
    removes the flight or the window, and what the event says of it), then the lock freed."""
    flight = item.get("flight") or {}
    window = item.get("warm_slot") or {}
    if flight or window.get("release") == decision.release_id:
        good = _after_traffic(ctl, fleet, decision, flight=flight, window=window, reason=reason)
        ctl.ledger.record_step(
            fleet.name,
            decision.release_id,
            step="rolled back",
            detail={"how": decision.action, "action": done, "reason": reason},
        )
        body = {
            "release_id": decision.release_id,
            "environment": ctl.environment,
            "fleet": fleet.name,
            "strategy": fleet.strategy,
            "to_ami": good,
            "from_ami": flight.get("to_ami") if flight else item.get("last_good_ami"),
            "reason": reason,
            "rollback": decision.action,
        }
        # The AMI taken out of service: a later environment never promotes it.
        body["rolled_back_ami"] = body["from_ami"]
        events.put(ctl.aws.events, "Release Rolled Back", body)
        ctl.ledger.close_release(
            fleet.name, decision.release_id, outcome="rolled back", reason=reason, good_ami=good
        )
    ctl.ledger.release_lock(
        fleet.name,
        decision.release_id
        if decision.action == "in_flight"
        else claims.window_lock(decision.release_id),
    )
    logger.warning("rolled back", extra={"how": decision.action, "done": done, "reason": reason})
    return Outcome(decision.action, fleet.name, release=decision.release_id)


def _lost_claim(
    ctl: Controller,
    fleet: RollbackFleet,
    decision: Decision,
    flight: dict[str, Any],
    *,
    reason: str,
    since: str,
    event_id: str,
) -> Outcome:
    """Traffic moved for a release in flight, then the claim was lost: act on what the
    fleet is now (read again). Another event's claim: nothing more. The release's own
    Succeed, which freed the lock meanwhile: roll that success back instead, from its
    window, or (no window left: its old slot, where traffic just went, is being retired)
    with traffic back on the new slot first and a rollback release."""
    again = decide(ctl.ledger.fleet_item(fleet.name), clock.now())
    if again.release_id != decision.release_id or again.action not in ("window", "release"):
        logger.info("already rolled back by another event", extra={"reason": reason})
        return Outcome("duplicate", fleet.name, release=decision.release_id)
    if again.action == "release" and fleet.strategy != "rolling":
        moves.weights_back(ctl.aws.elbv2, fleet, flight["target_slot"], flight["active_slot"])
    logger.info("the release succeeded meanwhile", extra={"now": again.action})
    return roll_back(ctl, fleet, reason=reason, since=since, event_id=event_id)


def _after_traffic(
    ctl: Controller,
    fleet: RollbackFleet,
    decision: Decision,
    *,
    flight: dict[str, Any],
    window: dict[str, Any],
    reason: str,
) -> str:
    """Once traffic is back and the rollback claimed: stop the release (in flight) or
    restore the window's parameters, empty the new slot; the AMI now serving."""
    aws, environment = ctl.aws, ctl.environment
    if decision.action == "in_flight":
        moves.stop_execution(aws.stepfunctions, ctl.state_machine_arn, decision.release_id, reason)
        if fleet.strategy != "rolling":
            moves.empty_slot(aws.autoscaling, aws.ssm, environment, fleet, flight["target_slot"])
        return str(flight["from_ami"])
    moves.restore_window(aws.ssm, environment, fleet, window)
    moves.empty_slot(aws.autoscaling, aws.ssm, environment, fleet, window["new_slot"])
    return str(window["previous_ami"])


def _claim(ctl: Controller, fleet: RollbackFleet, decision: Decision, event_id: str) -> bool:
    return claims.claim(ctl.ledger, fleet.name, decision.release_id, decision.action, event_id)


def _seconds_since(since: str) -> float | None:
    try:
        began = clock.parse_time(since)
    except ValueError:
        # Only the metric needs it, and traffic has already moved: never fail here.
        logger.warning("unreadable alarm time; no TimeToRollback", extra={"since": since})
        return None
    return max(0.0, (clock.now() - began).total_seconds())


def release_previous(
    ctl: Controller, fleet: RollbackFleet, *, item: dict[str, Any], reason: str, event_id: str
) -> Outcome:
    """A release of the AMI before the last one, marked as a rollback, started once.

    The execution is named after the release it undoes, so every event of a storm asks
    for the same one and only the first starts it (StartExecution refuses a second
    execution of that name: ExecutionAlreadyExists). Only once it has started is the
    release claimed as rolled back, also by an event that found it started (the one that
    started it may have failed before its claim, or be about to make it). If the claim is
    lost to another event's, that event finishes; if it is lost because a newer release
    succeeded meanwhile, the execution is stopped before its preflight can move anything."""
    last = str(item["last_release"])
    request = {
        "environment": ctl.environment,
        "fleet": fleet.name,
        "ami": item["previous_good_ami"],
        "trigger": f"rollback of {last}: {reason}"[:300],
        "event_id": event_id,
        "image": None,
    }
    name = rollback_execution_name(last)
    try:
        ctl.aws.stepfunctions.start_execution(
            stateMachineArn=ctl.state_machine_arn, name=name, input=json.dumps(request)
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        logger.info("rollback release already started", extra={"execution": name})
    if not claims.claim(ctl.ledger, fleet.name, last, "release", event_id):
        if ctl.ledger.fleet_item(fleet.name).get("rolled_back") == last:
            logger.info("already rolled back by another event", extra={"execution": name})
            return Outcome("duplicate", fleet.name, release=last)
        moves.stop_execution(ctl.aws.stepfunctions, ctl.state_machine_arn, name, "claim lost")
        logger.warning("rollback release stopped: the fleet moved on", extra={"execution": name})
        return Outcome("duplicate", fleet.name, release=last)
    # The last release is rolled back: a later environment never promotes its AMI.
    body = {
        "release_id": last,
        "environment": ctl.environment,
        "fleet": fleet.name,
        "strategy": fleet.strategy,
        "to_ami": item["previous_good_ami"],
        "from_ami": item.get("last_good_ami"),
        "rolled_back_ami": item.get("last_good_ami"),
        "reason": reason,
        "rollback": "release",
    }
    events.put(ctl.aws.events, "Release Rolled Back", body)
    logger.warning("rollback release started", extra={"execution": name, "reason": reason})
    return Outcome("release", fleet.name, release=name)


def rollback_execution_name(release_id: str) -> str:
    """The one execution that may roll `release_id` back (Step Functions names: at most
    80 characters; a longer id keeps its end, where its unique part is)."""
    name = f"rollback-{release_id}"
    return name if len(name) <= 80 else "rollback-" + release_id[-71:]
