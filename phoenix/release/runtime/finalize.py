"""The end of a release: ledger, lock, pointer, events and metrics.

Actions:
- `succeed`: the controller's parameters and the pointer say what now serves; ledger
  closed; the rollback-target tags follow the fleet item (see `keep_rollback_targets`);
  lock released, `Release Succeeded`;
- `rolled_back` / `failed`: ledger closed with the reason, lock released, `Release
  Rolled Back` / `Release Failed`;
- `rejected`: the fleet was locked or paused; the release is recorded as rejected and
  `Release Rejected` says why (the lock is someone else's: untouched);
- `retire`: after the rollback window, the old slot scales to 0 and the window's AMI
  loses its tag if nothing else names it, unless a later release (or a rollback) has
  changed the fleet since.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError

from phoenix.kernel import clock, ledger
from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import Ledger
from phoenix.kernel.settings import ReleaseSettings
from phoenix.release.runtime import events as release_events
from phoenix.release.runtime import strategy
from phoenix.release.runtime.models import ReleaseState
from phoenix.release.runtime.steps import record

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from types_boto3_ec2.type_defs import TagTypeDef

# Retiring is two calls; a lock that outlives a failed retire frees itself soon.
RETIRE_HOLD = timedelta(minutes=5)
OUTCOMES = {"succeed": "succeeded", "rolled_back": "rolled back", "failed": "failed"}
# The handler's logger (Powertools shares its keys with child loggers).
logger = Logger(child=True)


def _duration(state: ReleaseState) -> float:
    return (clock.now() - state.release.started_at).total_seconds()


def succeed(
    aws: Clients, settings: ReleaseSettings, state: ReleaseState, metrics: Metrics
) -> dict[str, Any]:
    """`succeed`: see the module docstring; whether and when the old slot retires.

    A rollback may take the release while this step runs (a request or an alarm: the
    release still holds the lock): the close is conditional on no rollback having claimed
    it, and when one did, the parameters this step wrote go back to what serves, the
    AMI before it (the rollback has put the traffic there)."""
    plan = state.need_plan()
    strategy.commit(aws.ssm, state, plan, state.need_version())
    record(aws, settings, state, "pointer moved", metrics, ami=state.ami)
    window = state.fleet_spec.rollback_window_seconds
    keeps_old_slot = state.fleet_spec.strategy != "rolling" and window > 0
    warm = {
        "release": state.release.id,
        "old_slot": plan.active_slot,
        "new_slot": plan.target_slot,
        "previous_ami": plan.from_ami,
        "until": _later(window),
    }
    closed = Ledger(aws.dynamodb, settings.table_name).close_success(
        state.fleet,
        state.release.id,
        good_ami=state.ami,
        # A rollback release goes back to an AMI: nothing before it to return to.
        # Re-releasing the AMI already serving keeps the fallback it had.
        previous_ami=""
        if state.is_rollback
        else (plan.from_ami if plan.from_ami != state.ami else None),
        window=warm if keeps_old_slot else None,
    )
    if not closed:
        strategy.uncommit(aws.ssm, state, plan)
        logger.warning("rolled back while it succeeded: the parameters say what serves")
        return {"retire": False, "retire_at": warm["until"]}
    if plan.from_ami != state.ami:  # a re-release changes no rollback target
        keep_rollback_targets(aws, settings, state.fleet)
    _end(aws, settings, state, "succeeded", metrics)
    release_events.publish(aws.events, "Release Succeeded", state)
    return {"retire": keeps_old_slot, "retire_at": warm["until"]}


def _later(seconds: int) -> str:
    return ledger.iso(clock.now() + timedelta(seconds=seconds))


def _end(
    aws: Clients, settings: ReleaseSettings, state: ReleaseState, outcome: str, metrics: Metrics
) -> None:
    """Free the lock and count the release's end (its outcome is in the ledger already)."""
    Ledger(aws.dynamodb, settings.table_name).release_lock(state.fleet, state.release.id)
    metrics.add_metric(name="ReleaseDuration", unit=MetricUnit.Seconds, value=_duration(state))
    name = {"succeeded": "ReleasesSucceeded", "rolled back": "ReleasesRolledBack"}
    metrics.add_metric(name=name.get(outcome, "ReleasesFailed"), unit=MetricUnit.Count, value=1)


def retire(aws: Clients, settings: ReleaseSettings, state: ReleaseState) -> dict[str, Any]:
    """`retire`: the old slot to 0 unless the fleet changed since; whether it did."""
    plan = state.need_plan()
    if not Ledger(aws.dynamodb, settings.table_name).close_window(state.fleet, state.release.id):
        logger.info("old slot kept: the fleet changed since (a rollback or a later release)")
        return {"retired": False}
    try:
        Ledger(aws.dynamodb, settings.table_name).acquire(
            state.fleet, state.release.id, hold=RETIRE_HOLD
        )
    except ledger.LockRefusedError as refusal:
        logger.info("old slot kept", extra={"reason": str(refusal)})
        return {"retired": False}
    try:
        strategy.empty_slot(aws.autoscaling, aws.ssm, state, plan.active_slot)
        keep_rollback_targets(aws, settings, state.fleet)
    finally:
        Ledger(aws.dynamodb, settings.table_name).release_lock(state.fleet, state.release.id)
    return {"retired": True}


TAG: list[TagTypeDef] = [{"Key": ledger.ROLLBACK_TARGET_TAG, "Value": "true"}]


def keep_rollback_targets(aws: Clients, settings: ReleaseSettings, fleet: str) -> None:
    """Tag the AMIs the fleet item now names as rollback targets (ledger.rollback_targets),
    and untag those it held and no longer names once no fleet of the environment holds
    them: the image lifecycle keeps exactly what some fleet may roll back to
    (docs/adr/0008-rollback-target-tags.md). Every write repeats safely on a retry.

    Called while the fleet's lock is held (succeed, retire), so one fleet's
    reconciliations never overlap; other fleets' may, hence the holders record and the
    check after an untag (a fleet that took the AMI meanwhile gets its tag back).
    """
    book = Ledger(aws.dynamodb, settings.table_name)
    item = book.fleet_item(fleet)
    named = ledger.rollback_targets(item)
    held = set(item.get("rollback_targets") or [])
    gained = sorted(named - held)
    for ami in gained:
        # Read before holding: tagged yet held by nobody means tagged before holders
        # were recorded (by this fleet or another), so it is never untagged.
        tagged = _tagged(aws, ami)
        if not book.hold_target(ami, fleet) and tagged:
            book.hold_target(ami, ledger.UNTRACKED_HOLDER)
    if gained:
        aws.ec2.create_tags(Resources=gained, Tags=TAG)
    for ami in sorted(held - named):
        others = book.drop_target(ami, fleet)
        if others:
            logger.info("rollback target kept", extra={"ami": ami, "holders": sorted(others)})
            continue
        _untag(aws, ami)
        if book.target_holders(ami):
            aws.ec2.create_tags(Resources=[ami], Tags=TAG)
    if named != held:
        book.record_targets(fleet, named)


def _tagged(aws: Clients, ami: str) -> bool:
    images = aws.ec2.describe_images(ImageIds=[ami]).get("Images", [])
    return any(tag in TAG for image in images for tag in image.get("Tags", []))


def _untag(aws: Clients, ami: str) -> None:
    """Remove the tag; an AMI already deregistered has nothing to keep."""
    try:
        aws.ec2.delete_tags(Resources=[ami], Tags=[{"Key": ledger.ROLLBACK_TARGET_TAG}])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "InvalidAMIID.NotFound":
            raise
        logger.info("rollback target already deregistered", extra={"ami": ami})


def conclude(
    aws: Clients, settings: ReleaseSettings, state: ReleaseState, action: str, metrics: Metrics
) -> dict[str, Any]:
    """`rejected`, `rolled_back` or `failed`: the outcome recorded and announced."""
    reason = state.reason() or "unknown"
    if action == "rejected":
        facts = {"trigger": state.trigger, "to_ami": state.ami, "outcome": "rejected"}
        Ledger(aws.dynamodb, settings.table_name).open_release(state.fleet, state.release.id, facts)
        Ledger(aws.dynamodb, settings.table_name).close_release(
            state.fleet,
            state.release.id,
            outcome="rejected",
            reason=reason,
            good_ami=None,
        )
        release_events.publish(aws.events, "Release Rejected", state, reason=reason)
        return {"outcome": "rejected", "reason": reason}
    outcome = OUTCOMES[action]
    good = state.plan.from_ami if state.plan and action == "rolled_back" else None
    Ledger(aws.dynamodb, settings.table_name).close_release(
        state.fleet, state.release.id, outcome=outcome, reason=reason, good_ami=good
    )
    _end(aws, settings, state, outcome, metrics)
    if action == "rolled_back":
        # rolled_back_ami: a later environment never promotes it.
        release_events.publish(
            aws.events, "Release Rolled Back", state, reason=reason, rolled_back_ami=state.ami
        )
    else:
        release_events.publish(aws.events, "Release Failed", state, reason=reason)
    return {"outcome": outcome, "reason": reason}
