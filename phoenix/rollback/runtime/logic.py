"""Rollback outside the release's own Catch paths: alarms and requests (DESIGN.md 5).

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
  it, marked as a rollback;
- nothing phoenix released, a release that is itself a rollback, or one already rolled
  back: nothing to do (logged).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from phoenix.kernel import fleet_calls, ledger
from phoenix.kernel.clock import parse_time
from phoenix.kernel.fleet_calls import put_parameter
from phoenix.kernel.names import Slot, release_pointer, slot_parameter
from phoenix.rollback.runtime.models import RollbackFleet

Action = Literal["in_flight", "window", "release", "nothing"]


@dataclass(frozen=True)
class Decision:
    action: Action
    release_id: str = ""
    why: str = ""


def decide(item: dict[str, Any], now: datetime) -> Decision:
    """What a rollback of this fleet means now, from its ledger item."""
    flight = item.get("flight") or {}
    owner = item.get("lock_owner")
    if owner:
        if flight.get("release") == owner and not flight.get("rollback"):
            return Decision("in_flight", owner)
        # A rollback release in flight (rolling it back would loop), or a release whose
        # flight is not recorded yet (preflight running) or a retire: nothing has moved
        # the fleet's traffic yet, and the release's own gates apply.
        return Decision("nothing", owner, "the release in flight is a rollback or starting")
    last = item.get("last_release")
    if not last or item.get("last_outcome") != "succeeded":
        return Decision("nothing", last or "", "no successful release to roll back")
    window = item.get("warm_slot") or {}
    if window.get("release") == last and now.isoformat() < _comparable(window.get("until")):
        return Decision("window", last)
    if not item.get("previous_good_ami"):
        return Decision("nothing", last, "no earlier AMI to go back to")
    return Decision("release", last)


def _comparable(moment: Any) -> str:
    return parse_time(str(moment)).isoformat() if moment else ""


def weights_back(elbv2: Any, fleet: RollbackFleet, serve: Slot, drop: Slot) -> None:
    """ModifyListener: every request to `serve`'s target group."""
    fleet_calls.set_weights(
        elbv2,
        fleet.listener,
        {fleet.slots[serve].target_group: 100, fleet.slots[drop].target_group: 0},
    )


ROLLING_BACK = {"RollbackInProgress", "RollbackSuccessful"}


def refresh_back(autoscaling: Any, fleet: RollbackFleet) -> str | None:
    """RollbackInstanceRefresh of the rolling slot: what was done, or None when the
    refresh is neither rolling back nor can be rolled back (it ended on the new version,
    or AWS refuses: the release's own gate and Catch path undo it, with a refresh back
    or a cancel first, so it is left to them)."""
    group = fleet.slots["blue"].group
    try:
        autoscaling.rollback_instance_refresh(AutoScalingGroupName=group)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        latest = autoscaling.describe_instance_refreshes(AutoScalingGroupName=group, MaxRecords=1)
        found = latest.get("InstanceRefreshes", [])
        if found and found[0]["Status"] in ROLLING_BACK:
            return f"{found[0]['Status']} already ({code})"  # AutoRollback got there first
        return None
    return "rolled back"


def claim(dynamodb: Any, table: str, fleet: str, release_id: str, expected: str) -> bool:
    """Mark the release as rolled back on the fleet item, once (conditional).

    `expected` is what makes this the first claim: `in_flight` (the release still holds
    the lock and nobody claimed it) or `window` (its outcome is still succeeded)."""
    condition = {
        "in_flight": "lock_owner = :release "
        "AND (attribute_not_exists(rolled_back) OR rolled_back <> :release)",
        "window": "last_release = :release AND last_outcome = :succeeded "
        "AND attribute_exists(warm_slot)",
        "release": "last_release = :release AND last_outcome = :succeeded",
    }[expected]
    values: dict[str, Any] = {":release": {"S": release_id}, ":outcome": {"S": "rolled back"}}
    if expected != "in_flight":
        values[":succeeded"] = {"S": "succeeded"}
    return ledger.update_fleet_if(
        dynamodb,
        table,
        fleet,
        UpdateExpression="SET rolled_back = :release, last_outcome = :outcome",
        ConditionExpression=condition,
        ExpressionAttributeValues=values,
    )


def stop_execution(stepfunctions: Any, state_machine_arn: str, release_id: str, why: str) -> None:
    arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{release_id}"
    try:
        stepfunctions.stop_execution(executionArn=arn, error="RolledBack", cause=why[:32000])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
            raise


def empty_slot(
    autoscaling: Any, ssm: Any, environment: str, fleet: RollbackFleet, slot: Slot
) -> None:
    fleet_calls.empty_slot(
        autoscaling,
        ssm,
        minimum_parameter=slot_parameter(environment, fleet.name, slot, "min-size"),
        group=fleet.slots[slot].group,
    )


def restore_window(
    ssm: Any, environment: str, fleet: RollbackFleet, window: dict[str, Any]
) -> None:
    """The controller's parameters say the old slot serves the previous AMI again."""
    old, new = window["old_slot"], window["new_slot"]
    put_parameter(ssm, slot_parameter(environment, fleet.name, old, "weight"), "100")
    put_parameter(ssm, slot_parameter(environment, fleet.name, new, "weight"), "0")
    put_parameter(ssm, release_pointer(environment, fleet.name), str(window["previous_ami"]))
