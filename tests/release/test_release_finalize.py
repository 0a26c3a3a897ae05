"""The end of a release: the pointer and parameters, the ledger, the lock, the events, and
the old slot retired after the rollback window (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY

from phoenix.kernel import ledger
from phoenix.release.handlers.finalize import handle
from phoenix.release.runtime.finalize import RETIRE_HOLD
from tests.release.release_state import (
    AMI,
    GROUPS,
    POINTER,
    PREVIOUS_AMI,
    RELEASE_ID,
    SETTINGS,
    TABLE,
    VERSION,
    IsoAfter,
    StubbedAws,
    conditional_check_failed,
    expect_event,
    expect_put_parameter,
    expect_step,
    expect_unlock,
    fleet_key,
    lambda_error,
    parameter,
    plan,
    release_key,
    release_state,
    step_input,
)
from tests.release.test_rollback_targets import expect_fleet_read, expect_target_moved

ROLLED_BACK: dict[str, Any] = {
    "wait": False,
    "action": "traffic",
    "reason": "GateFailedError: alarms in ALARM",
}


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


def _expect_close(
    aws: StubbedAws,
    outcome: str,
    reason: str,
    good_ami: str | None,
    kept: dict[str, Any] | None = None,
) -> None:
    """The release item closed; with `good_ami`, the fleet item too (and, on a success,
    what a later rollback needs: `kept`, the previous good AMI and the warm slot)."""
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": release_key(),
            "UpdateExpression": "SET outcome = :outcome, reason = :reason, ended_at = :at",
            "ExpressionAttributeValues": {
                ":outcome": {"S": outcome},
                ":reason": {"S": reason},
                ":at": ANY,
            },
        },
    )
    if good_ami is None:
        return
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": ANY,
            "ExpressionAttributeValues": {
                ":ami": {"S": good_ami},
                ":release": {"S": RELEASE_ID},
                ":outcome": {"S": outcome},
                ":at": ANY,
                **{f":{name}": value for name, value in (kept or {}).items()},
            },
        },
    )


def _kept(strategy: str) -> dict[str, Any]:
    """What a success keeps for a later rollback: the AMI before it and, blue_green and
    canary, the old slot warm until the end of the rollback window."""
    kept: dict[str, Any] = {"previous_good_ami": {"S": PREVIOUS_AMI}}
    if strategy != "rolling":
        warm = ledger.typed(
            {
                "release": RELEASE_ID,
                "old_slot": "blue",
                "new_slot": "green",
                "previous_ami": PREVIOUS_AMI,
            }
        )
        warm["M"] = {**warm["M"], "until": IsoAfter(timedelta(seconds=1800))}
        kept["warm_slot"] = warm
    return kept


# --- succeed ------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["blue_green", "canary"])
def test_success_moves_the_weights_and_the_pointer_last_then_closes_and_unlocks(
    aws: StubbedAws, strategy: str
) -> None:
    # Given green (the target) serving every request at version 8
    expect_put_parameter(aws, parameter("green", "launch-template-version"), str(VERSION))
    expect_put_parameter(aws, parameter("green", "weight"), "100")
    expect_put_parameter(aws, parameter("blue", "weight"), "0")
    expect_put_parameter(aws, POINTER, AMI)
    expect_step(aws, "pointer moved", ami=AMI)
    _expect_close(aws, "succeeded", "", good_ami=AMI, kept=_kept(strategy))
    expect_target_moved(aws, window=True)  # (tests/release/test_rollback_targets.py)
    expect_unlock(aws)
    expect_event(aws, "Release Succeeded", from_ami=PREVIOUS_AMI)

    # When the release succeeds
    result = handle(step_input(release_state(strategy), "succeed"), SETTINGS, aws.clients)

    # Then the old slot stays warm for the rollback window (1800 s), then is retired
    assert result["retire"] is True
    retire_at = datetime.fromisoformat(result["retire_at"])
    assert abs(retire_at - (datetime.now(UTC) + timedelta(seconds=1800))) < timedelta(minutes=1)
    # and the parameters (the pointer last) say what serves before anything else is done
    assert aws.calls[:4] == ["ssm.PutParameter"] * 4


def test_a_rolling_success_has_no_weights_and_nothing_to_retire(aws: StubbedAws) -> None:
    expect_put_parameter(aws, parameter("blue", "launch-template-version"), str(VERSION))
    expect_put_parameter(aws, POINTER, AMI)
    expect_step(aws, "pointer moved", ami=AMI)
    _expect_close(aws, "succeeded", "", good_ami=AMI, kept=_kept("rolling"))
    expect_target_moved(aws, window=False)
    expect_unlock(aws)
    expect_event(aws, "Release Succeeded")

    result = handle(step_input(release_state("rolling"), "succeed"), SETTINGS, aws.clients)

    assert result["retire"] is False


def test_releasing_the_ami_already_serving_tags_nothing(aws: StubbedAws) -> None:
    # Given the pointer already names the release's AMI (a repeated release)
    expect_put_parameter(aws, parameter("blue", "launch-template-version"), str(VERSION))
    expect_put_parameter(aws, POINTER, AMI)
    expect_step(aws, "pointer moved", ami=AMI)
    # (what it keeps as the AMI to roll back to: tests/rollback/test_rollback_ledger.py)
    _expect_close(aws, "succeeded", "", good_ami=AMI, kept={})  # keeps its fallback
    expect_unlock(aws)
    expect_event(aws, "Release Succeeded", from_ami=AMI)
    state = release_state("rolling", plan=plan("rolling", from_ami=AMI))

    handle(step_input(state, "succeed"), SETTINGS, aws.clients)

    assert not [call for call in aws.calls if call.startswith("ec2.")]


# --- rolled back, failed, rejected ------------------------------------------------------------


def test_a_rolled_back_release_marks_the_previous_ami_good_and_unlocks(aws: StubbedAws) -> None:
    reason = ROLLED_BACK["reason"]
    _expect_close(aws, "rolled back", reason, good_ami=PREVIOUS_AMI)
    expect_unlock(aws)
    expect_event(aws, "Release Rolled Back", reason=reason)

    state = release_state(rollback=ROLLED_BACK, error=lambda_error("GateFailedError", "other"))
    result = handle(step_input(state, "rolled_back"), SETTINGS, aws.clients)

    # Then the reason is the rollback's (it takes precedence over the caught error)
    assert result == {"outcome": "rolled back", "reason": reason}


@pytest.mark.parametrize("planned", [True, False], ids=["after preflight", "in preflight"])
def test_a_failed_release_is_closed_and_unlocked_leaving_the_fleet_item(
    aws: StubbedAws, planned: bool
) -> None:
    reason = "PreflightFailedError: preflight check 'fleet alarms OK' failed"
    _expect_close(aws, "failed", reason, good_ami=None)
    expect_unlock(aws)
    expect_event(aws, "Release Failed", reason=reason)
    error = lambda_error("PreflightFailedError", "preflight check 'fleet alarms OK' failed")
    state = release_state(planned=planned, prepared=planned, error=error)

    result = handle(step_input(state, "failed"), SETTINGS, aws.clients)

    assert result == {"outcome": "failed", "reason": reason}
    assert aws.calls == [
        "dynamodb.UpdateItem",
        "dynamodb.UpdateItem",
        "events.PutEvents",
    ]


def test_a_release_without_a_reason_is_closed_as_unknown(aws: StubbedAws) -> None:
    _expect_close(aws, "failed", "unknown", good_ami=None)
    expect_unlock(aws)
    expect_event(aws, "Release Failed", reason="unknown")
    result = handle(step_input(release_state(), "failed"), SETTINGS, aws.clients)
    assert result["reason"] == "unknown"


def test_a_rejected_release_is_recorded_without_touching_the_lock(aws: StubbedAws) -> None:
    # Given preflight was refused the lock (another release holds it)
    message = "fleet web is locked by release web-earlier until 2026-11-25T12:00:00Z"
    state = release_state(
        planned=False, prepared=False, error=lambda_error("LockRefusedError", message)
    )
    aws.dynamodb.add_response(
        "put_item",
        {},
        {
            "TableName": TABLE,
            "Item": {
                **release_key(),
                "trigger": {"S": "image-available"},
                "to_ami": {"S": AMI},
                "outcome": {"S": "in progress"},
                "release_id": {"S": RELEASE_ID},
                "fleet": {"S": "web"},
                "started_at": ANY,
                "last_step_at": ANY,
                "steps": {"L": []},
            },
        },
    )
    reason = f"LockRefusedError: {message}"
    _expect_close(aws, "rejected", reason, good_ami=None)
    expect_event(aws, "Release Rejected", reason=reason)

    result = handle(step_input(state, "rejected"), SETTINGS, aws.clients)

    # Then the lock (the other release's) is untouched: no unlock call
    assert result == {"outcome": "rejected", "reason": reason}
    assert aws.calls == ["dynamodb.PutItem", "dynamodb.UpdateItem", "events.PutEvents"]


# --- retire -------------------------------------------------------------------------------------


def _fleet_item(aws: StubbedAws, **attributes: str) -> None:
    aws.dynamodb.add_response(
        "get_item",
        {"Item": fleet_key() | {name: {"S": value} for name, value in attributes.items()}},
        {"TableName": TABLE, "Key": fleet_key(), "ConsistentRead": True},
    )


def _expect_lock(aws: StubbedAws, expires: Any = ANY) -> None:
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": ANY,
            "ConditionExpression": ANY,
            "ExpressionAttributeValues": {
                ":release": {"S": RELEASE_ID},
                ":expires": expires,
                ":now": ANY,
                ":false": {"BOOL": False},
            },
        },
    )


WINDOW_CLOSED = {
    "TableName": TABLE,
    "Key": fleet_key(),
    "UpdateExpression": "REMOVE warm_slot",
    "ConditionExpression": "last_release = :release AND last_outcome = :succeeded "
    "AND attribute_exists(warm_slot)",
    "ExpressionAttributeValues": {":release": {"S": RELEASE_ID}, ":succeeded": {"S": "succeeded"}},
}


def _expect_window_closed(aws: StubbedAws, refused: bool = False) -> None:
    """The rollback window ended first, on condition it is still this release's (a
    rollback inside it claims the same item under the opposite condition)."""
    if refused:
        aws.dynamodb.add_client_error(
            "update_item",
            service_error_code="ConditionalCheckFailedException",
            http_status_code=400,
            expected_params=WINDOW_CLOSED,
        )
        return
    aws.dynamodb.add_response("update_item", {}, WINDOW_CLOSED)


def _expect_emptied(aws: StubbedAws, slot: str) -> None:
    expect_put_parameter(aws, parameter(slot, "min-size"), "0")
    aws.autoscaling.add_response(
        "update_auto_scaling_group",
        {},
        {"AutoScalingGroupName": GROUPS[slot], "MinSize": 0, "DesiredCapacity": 0},
    )


OURS = {"last_release": RELEASE_ID, "last_outcome": "succeeded"}


def test_retire_ends_the_window_then_empties_the_old_slot_under_the_lock(
    aws: StubbedAws,
) -> None:
    # Given this release is still the fleet's last, succeeded, with its window open
    _expect_window_closed(aws)
    _expect_lock(aws)
    _expect_emptied(aws, "blue")
    expect_fleet_read(aws, held=[PREVIOUS_AMI])  # its AMI is still the previous good one
    expect_unlock(aws)

    result = handle(step_input(release_state(), "retire"), SETTINGS, aws.clients)

    assert result == {"retired": True}
    assert aws.calls[:4] == [
        "dynamodb.UpdateItem",
        "dynamodb.UpdateItem",
        "ssm.PutParameter",
        "autoscaling.UpdateAutoScalingGroup",
    ]


@pytest.mark.parametrize(
    "since",
    [
        {"last_release": "web-next", "last_outcome": "succeeded"},  # a later release
        {**OURS, "last_outcome": "rolled back"},  # a rollback after the window
        {**OURS, "warm_slot": "taken"},  # the window is still there: not this one's to end
    ],
)
def test_retire_keeps_the_old_slot_when_the_window_already_ended(
    aws: StubbedAws, since: dict[str, str]
) -> None:
    # Given a rollback inside the window or a later release (which of the two:
    # tests/rollback/test_rollback_ledger.py, on a moto table)
    _expect_window_closed(aws, refused=True)
    _fleet_item(aws, **since)
    result = handle(step_input(release_state(), "retire"), SETTINGS, aws.clients)
    assert result == {"retired": False}
    assert aws.calls == ["dynamodb.UpdateItem", "dynamodb.GetItem"]


def test_retire_run_again_after_its_scale_in_failed_finishes_it(aws: StubbedAws) -> None:
    # Given the window this release closed itself before its scale-in failed: still its
    # success, no window left (the step's retry, bench/reliability.py found it needed)
    _expect_window_closed(aws, refused=True)
    _fleet_item(aws, **OURS)
    _expect_lock(aws)
    expect_put_parameter(aws, parameter("blue", "min-size"), "0")
    aws.autoscaling.add_client_error("update_auto_scaling_group", service_error_code="Throttling")
    expect_unlock(aws)

    # When it runs again, it goes on to empty the old slot (here failing once more)
    with pytest.raises(ClientError, match="Throttling"):
        handle(step_input(release_state(), "retire"), SETTINGS, aws.clients)
    assert aws.calls[:3] == ["dynamodb.UpdateItem", "dynamodb.GetItem", "dynamodb.UpdateItem"]


def test_retire_keeps_the_old_slot_when_the_lock_is_refused(aws: StubbedAws) -> None:
    _expect_window_closed(aws)
    conditional_check_failed(aws.dynamodb)
    _fleet_item(aws, **OURS, lock_owner="web-next", lock_expires="2026-11-25T15:00:00Z")

    result = handle(step_input(release_state(), "retire"), SETTINGS, aws.clients)

    assert result == {"retired": False}
    assert aws.calls == ["dynamodb.UpdateItem", "dynamodb.UpdateItem", "dynamodb.GetItem"]


def test_retire_unlocks_even_when_emptying_the_slot_fails(aws: StubbedAws) -> None:
    _expect_window_closed(aws)
    _expect_lock(aws)
    expect_put_parameter(aws, parameter("blue", "min-size"), "0")
    aws.autoscaling.add_client_error("update_auto_scaling_group", service_error_code="Throttling")
    expect_unlock(aws)

    with pytest.raises(ClientError, match="Throttling"):
        handle(step_input(release_state(), "retire"), SETTINGS, aws.clients)

    assert aws.calls[-1] == "dynamodb.UpdateItem"


def test_retire_holds_the_lock_no_longer_than_a_release_may(aws: StubbedAws) -> None:
    # A retire that dies holding the lock refuses releases to the fleet for minutes only,
    # well under the hold a release itself may take (ledger.LOCK_HOLD)
    assert RETIRE_HOLD < ledger.LOCK_HOLD
    _expect_window_closed(aws)
    _expect_lock(aws, expires=IsoAfter(timedelta(minutes=5)))
    _expect_emptied(aws, "blue")
    expect_fleet_read(aws, held=[PREVIOUS_AMI])
    expect_unlock(aws)

    result = handle(step_input(release_state(), "retire"), SETTINGS, aws.clients)

    assert result == {"retired": True}
