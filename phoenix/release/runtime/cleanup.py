"""What a release execution leaves when it ends without closing its release, put right;
and the lock held for as long as an execution may live.

An execution that ends TIMED_OUT, ABORTED (StopExecution) or FAILED outside its Catch
paths leaves what it was doing: traffic split between the slots, the fleet's lock held,
the release item `in progress`. Step Functions announces every such end (`Step Functions
Execution Status Change`); the cleanup then reads the fleet's ledger item and acts only
when the lock is still this execution's (the execution's name is the release id):
- the release item still `in progress`: blue_green/canary put every request back on
  the active slot the flight names (one ModifyListener), the weights in the controller's
  parameters too, and empty the target slot; rolling rolls back (or, when AWS refuses,
  cancels) this release's refresh while it runs, and leaves instances alone otherwise.
  Nothing is undone once the pointer names the new AMI (Succeed had moved it: the new
  AMI serves, as after a failed Succeed), nor when the release's own Rollback step
  already ran (the ledger has its `rolled back` step; a rolling rollback refresh is left
  to finish). Then the release is closed `failed` (`rolled back` after its own Rollback
  step put blue_green/canary traffic back: a rolling one is back only when its refresh
  ends) with the status as the reason, and `Release Failed` (`Release Rolled Back`) sent;
- in any case the lock is released.
Nothing is done when the lock is free or another release's (a Catch path, Succeed or the
rollback function got there first), nor while the rollback function, which claimed the
release (`rolled_back`), finishes it: it stops the execution before it closes the
release, so its ABORTED can come first, and it releases the lock last.

`HoldLock`, the state after Preflight, holds the lock until the execution's own deadline
(its start plus the state machine's timeout): no wait of a live execution (canary bakes
one after the other, a refresh's token waits and polls) outlasts it, and when the
execution dies earlier its status change frees it here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from phoenix.kernel import attributes, clock, events, fleet_calls, ledger
from phoenix.kernel.clients import Clients
from phoenix.kernel.fleet_calls import ACTIVE_REFRESH_STATUSES, put_parameter
from phoenix.kernel.ledger import Ledger
from phoenix.kernel.models import FleetName, ServingFleet
from phoenix.kernel.names import in_listener_order, release_pointer, slot_parameter
from phoenix.kernel.registry import read_fleet
from phoenix.kernel.settings import ReleaseSettings
from phoenix.release.runtime.models import ReleaseState

if TYPE_CHECKING:
    from types_boto3_autoscaling.client import AutoScalingClient
    from types_boto3_ssm.client import SSMClient

STATUS_CHANGE = "Step Functions Execution Status Change"
# The ends no Catch path handles; SUCCEEDED and RUNNING are refused.
UNHANDLED = ("TIMED_OUT", "ABORTED", "FAILED")
logger = Logger(child=True)


class CleanupSettings(ReleaseSettings):
    state_machine_arn: str
    # The state machine's TimeoutSeconds: how long an execution may live.
    execution_timeout_seconds: Annotated[int, Field(ge=60)]


class StatusChangeDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    execution_arn: str = Field(alias="executionArn", pattern=r"^arn:aws[a-z-]*:states:")
    state_machine_arn: str = Field(alias="stateMachineArn", min_length=1)
    name: str = Field(min_length=1, max_length=80)
    status: str
    start_date: int = Field(alias="startDate", ge=0)  # milliseconds since the epoch
    input: str | None = None
    error: str | None = None
    cause: str | None = None


class StatusChange(EventBridgeModel):
    """`Step Functions Execution Status Change` from aws.states."""

    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: StatusChangeDetail


class ReleaseRequest(BaseModel):
    """The execution's input (the trigger's request), as far as the cleanup reads it."""

    environment: str
    fleet: FleetName
    ami: str = Field(pattern=r"^ami-[0-9a-f]{8,17}$")


class RefusedError(Exception):
    """Not an end of this environment's release execution to clean up; nothing changed."""


@dataclass(frozen=True)
class Ended:
    """A release execution that ended without its own end handling."""

    release_id: str
    status: str
    started_at: datetime
    fleet: ServingFleet
    ami: str
    reason: str


def parse(event: Any, settings: CleanupSettings, ssm: SSMClient) -> Ended:
    """The execution that ended, or RefusedError / ValidationError saying why not. The one
    call is the read of the execution's fleet from the registry, after every other check."""
    if not isinstance(event, dict):
        raise RefusedError(f"the event is a {type(event).__name__}, not an object")
    change = StatusChange.model_validate(event).detail
    if change.state_machine_arn != settings.state_machine_arn:
        raise RefusedError(f"state machine {change.state_machine_arn} is not this release's")
    if change.status not in UNHANDLED:
        raise RefusedError(f"status {change.status} is not one of {', '.join(UNHANDLED)}")
    execution = settings.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
    if change.execution_arn != f"{execution}:{change.name}":
        raise RefusedError(f"execution {change.execution_arn} is not {change.name} of this machine")
    try:
        request = ReleaseRequest.model_validate(json.loads(change.input or ""))
    except ValueError:
        raise RefusedError("the execution's input is not a release request") from None
    spec = None
    if request.environment == settings.environment:
        spec = read_fleet(ssm, settings.environment, request.fleet)
    if spec is None:
        raise RefusedError(f"no fleet {request.fleet!r} in {settings.environment}")
    why = ": ".join(part for part in (change.error, change.cause) if part)
    return Ended(
        release_id=change.name,
        status=change.status,
        started_at=datetime.fromtimestamp(change.start_date / 1000, tz=UTC),
        fleet=ServingFleet.of_spec(spec),
        ami=request.ami,
        reason=(f"execution {change.status}: {why}" if why else f"execution {change.status}")[:500],
    )


def not_owned(item: dict[str, Any], release_id: str) -> str:
    """Why the fleet is not this release's to clean up ("" when it is)."""
    owner = item.get("lock_owner")
    if owner != release_id:
        return f"the lock is held by {owner}" if owner else "the lock is free"
    if item.get("rolled_back") == release_id:
        return "the rollback function claimed the release and finishes it"
    return ""


@dataclass(frozen=True)
class Outcome:
    action: Literal["cleaned", "nothing"]
    fleet: str
    release: str
    why: str
    # What the release was closed as, when the cleanup closed it.
    closed: str | None = None

    def response(self) -> dict[str, Any]:
        return {"action": self.action, "fleet": self.fleet, "release": self.release} | (
            {"why": self.why, "closed": self.closed} if self.closed else {"why": self.why}
        )


def clean_up(aws: Clients, settings: CleanupSettings, ended: Ended) -> Outcome:
    """See the module docstring."""
    book = Ledger(aws.dynamodb, settings.table_name)
    fleet, release_id = ended.fleet.name, ended.release_id
    item = book.fleet_item(fleet)
    why = not_owned(item, release_id)
    if why:
        logger.info("nothing to clean up", extra={"why": why, "status": ended.status})
        return Outcome("nothing", fleet, release_id, why)
    release = attributes.plain(
        aws.dynamodb.get_item(
            TableName=settings.table_name,
            Key=ledger.release_key(fleet, release_id),
            ConsistentRead=True,
        ).get("Item", {})
    )
    flight = item.get("flight") or {}
    flight = flight if flight.get("release") == release_id else {}
    closed: str | None = None
    done = "the release was closed already" if release else "no release item was opened"
    if release.get("outcome") == "in progress":
        undone = any(step.get("step") == "rolled back" for step in release.get("steps", []))
        # A rolling rollback's refresh may still run: `rolled back` only once it is back.
        rolled_back = undone and ended.fleet.strategy != "rolling"
        done = (
            f"its own rollback had {'run' if rolled_back else 'started, left to finish'}"
            if undone
            else restore(aws, settings, ended, flight)
        )
        closed = "rolled back" if rolled_back else "failed"
        book.record_step(fleet, release_id, step="cleaned up", detail={"action": done[:300]})
        book.close_release(
            fleet,
            release_id,
            outcome=closed,
            reason=ended.reason,
            good_ami=flight.get("from_ami") if rolled_back else None,
        )
    book.release_lock(fleet, release_id)
    if closed:
        body = {
            "release_id": release_id,
            "environment": settings.environment,
            "fleet": fleet,
            "strategy": ended.fleet.strategy,
            "to_ami": ended.ami,
            "from_ami": flight.get("from_ami"),
            "reason": ended.reason,
        }
        if closed == "rolled back":
            # The AMI taken out of service: a later environment never promotes it.
            events.put(aws.events, "Release Rolled Back", {**body, "rolled_back_ami": ended.ami})
        else:
            events.put(aws.events, "Release Failed", body)
    logger.warning("cleaned up", extra={"done": done, "closed": closed, "reason": ended.reason})
    return Outcome("cleaned", fleet, release_id, done, closed)


def restore(aws: Clients, settings: CleanupSettings, ended: Ended, flight: dict[str, Any]) -> str:
    """Put the fleet back as the release found it (its flight); what was done."""
    if not flight:
        return "nothing had moved (no flight recorded)"
    fleet, environment = ended.fleet, settings.environment
    pointer = release_pointer(environment, fleet.name)
    found = aws.ssm.get_parameters(Names=[pointer]).get("Parameters", [])
    serving = found[0].get("Value") if found else None
    if serving == flight.get("to_ami") != flight.get("from_ami"):
        return f"nothing undone: the pointer had moved to {serving}, which serves"
    active, target = flight["active_slot"], flight["target_slot"]
    if fleet.strategy == "rolling":
        return undo_refresh(aws.autoscaling, fleet.slots[target].group, ended.started_at)
    weights = {active: 100, target: 0}  # in the template's order, as each ModifyListener
    groups = {fleet.slots[s].target_group: weights[s] for s in in_listener_order(fleet.slots)}
    fleet_calls.set_weights(aws.elbv2, fleet.listener, groups)
    put_parameter(aws.ssm, slot_parameter(environment, fleet.name, active, "weight"), "100")
    put_parameter(aws.ssm, slot_parameter(environment, fleet.name, target, "weight"), "0")
    fleet_calls.empty_slot(
        aws.autoscaling,
        aws.ssm,
        minimum_parameter=slot_parameter(environment, fleet.name, target, "min-size"),
        group=fleet.slots[target].group,
    )
    return f"all traffic back on {active}, {target} emptied"


def undo_refresh(autoscaling: AutoScalingClient, group: str, started_at: datetime) -> str:
    """Roll back this release's refresh while it runs (RollbackInstanceRefresh; a cancel
    when AWS refuses). A refresh that ended, is already rolling back or cancelling, or
    is a refresh back (started without AutoRollback, as the release's Rollback step
    starts one) is left as it is: undoing it here would start or reverse a refresh with
    nobody to wait for it. Never starts a refresh."""
    latest = fleet_calls.latest_refresh(autoscaling, group)
    if latest is None or clock.parse_time(latest["StartTime"]) < started_at:
        return f"no refresh of this release on {group}"
    refresh, status = latest["InstanceRefreshId"], latest["Status"]
    forward = latest.get("Preferences", {}).get("AutoRollback") is True
    if status not in ACTIVE_REFRESH_STATUSES or status in {"Cancelling", "RollbackInProgress"}:
        return f"refresh {refresh} left {status}"
    if not forward:
        return f"refresh {refresh} left {status}: a refresh back"
    try:
        autoscaling.rollback_instance_refresh(AutoScalingGroupName=group)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "IrreversibleInstanceRefresh":
            raise
        autoscaling.cancel_instance_refresh(AutoScalingGroupName=group)
        return f"refresh {refresh} cancelled (AWS would not roll it back)"
    return f"refresh {refresh} rolled back"


class LockLostError(Exception):
    """The release no longer holds its fleet's lock."""


def hold_lock(aws: Clients, settings: CleanupSettings, state: ReleaseState) -> dict[str, Any]:
    """`hold` (the HoldLock step): the lock held until the execution's deadline; when it
    already is, nothing changes; LockLostError when the release does not hold it."""
    until = ledger.iso(
        state.release.started_at + timedelta(seconds=settings.execution_timeout_seconds)
    )
    book = Ledger(aws.dynamodb, settings.table_name)
    held = book.update_fleet_if(
        state.fleet,
        UpdateExpression="SET lock_expires = :until",
        ConditionExpression="lock_owner = :release AND lock_expires < :until",
        ExpressionAttributeValues={
            ":release": {"S": state.release.id},
            ":until": {"S": until},
        },
    )
    if held:
        return {"until": until}
    item = book.fleet_item(state.fleet)
    if item.get("lock_owner") != state.release.id:
        raise LockLostError(f"fleet {state.fleet} is locked by {item.get('lock_owner')}")
    return {"until": str(item.get("lock_expires"))}
