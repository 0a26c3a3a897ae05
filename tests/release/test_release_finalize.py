"""The end of a release: the pointer and parameters, the ledger, the lock, the events
(Stubber). The old slot retired after the window: test_release_retire.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import ANY

from phoenix.kernel import attributes
from phoenix.release.handlers.finalize import handle
from tests.release.release_state import (
    AMI,
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
from tests.release.test_rollback_targets import expect_target_moved

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


def _expect_close(aws: StubbedAws, outcome: str, reason: str, good_ami: str | None) -> None:
    """The release item closed; with `good_ami`, the fleet item too."""
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
            },
        },
    )


def _expect_success(aws: StubbedAws, kept: dict[str, Any]) -> None:
    """The fleet item closed as succeeded while the release holds the lock and no rollback
    claimed it (`kept`: see _kept); then the release item, unless a rollback closed it."""
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": ANY,
            "ConditionExpression": "lock_owner = :release AND "
            "(attribute_not_exists(rolled_back) OR rolled_back <> :release)",
            "ExpressionAttributeValues": {
                ":ami": {"S": AMI},
                ":release": {"S": RELEASE_ID},
                ":outcome": {"S": "succeeded"},
                ":at": ANY,
                **{f":{name}": value for name, value in kept.items()},
            },
        },
    )
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": release_key(),
            "UpdateExpression": "SET outcome = :outcome, reason = :reason, ended_at = :at",
            "ConditionExpression": "outcome = :open",
            "ExpressionAttributeValues": {
                ":outcome": {"S": "succeeded"},
                ":reason": {"S": ""},
                ":at": ANY,
                ":open": {"S": "in progress"},
            },
        },
    )


def _kept(strategy: str) -> dict[str, Any]:
    """What a success keeps for a later rollback: the AMI before it and, blue_green and
    canary, the old slot warm until the end of the rollback window."""
    kept: dict[str, Any] = {"previous_good_ami": {"S": PREVIOUS_AMI}}
    if strategy != "rolling":
        warm = attributes.typed(
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


def _expect_green_committed(aws: StubbedAws) -> None:
    """Succeed's parameters: green (the target) at version 8 takes every request, the
    pointer last; then its step."""
    expect_put_parameter(aws, parameter("green", "launch-template-version"), str(VERSION))
    expect_put_parameter(aws, parameter("green", "weight"), "100")
    expect_put_parameter(aws, parameter("blue", "weight"), "0")
    expect_put_parameter(aws, POINTER, AMI)
    expect_step(aws, "pointer moved", ami=AMI)


@pytest.mark.parametrize("strategy", ["blue_green", "canary"])
def test_success_moves_the_weights_and_the_pointer_last_then_closes_and_unlocks(
    aws: StubbedAws, strategy: str
) -> None:
    # Given green (the target) serving every request at version 8
    _expect_green_committed(aws)
    _expect_success(aws, _kept(strategy))
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


@pytest.mark.parametrize("strategy", ["blue_green", "canary"])
def test_a_release_rolled_back_while_it_succeeds_gives_its_parameters_back(
    aws: StubbedAws, strategy: str
) -> None:
    # Given a rollback (a request, an alarm) took the release while its Succeed step ran
    _expect_green_committed(aws)
    conditional_check_failed(aws.dynamodb)
    rolled_back = {"last_release": {"S": RELEASE_ID}, "last_outcome": {"S": "rolled back"}}
    aws.dynamodb.add_response(
        "get_item",
        {"Item": {**fleet_key(), "rolled_back": {"S": RELEASE_ID}, **rolled_back}},
        {"TableName": TABLE, "Key": fleet_key(), "ConsistentRead": True},
    )
    # Then the parameters say the old slot serves the AMI before it (the pointer last),
    # and nothing is closed, unlocked or announced as succeeded
    expect_put_parameter(aws, parameter("blue", "weight"), "100")
    expect_put_parameter(aws, parameter("green", "weight"), "0")
    expect_put_parameter(aws, POINTER, PREVIOUS_AMI)

    result = handle(step_input(release_state(strategy), "succeed"), SETTINGS, aws.clients)

    assert result["retire"] is False


def test_a_rolling_success_has_no_weights_and_nothing_to_retire(aws: StubbedAws) -> None:
    expect_put_parameter(aws, parameter("blue", "launch-template-version"), str(VERSION))
    expect_put_parameter(aws, POINTER, AMI)
    expect_step(aws, "pointer moved", ami=AMI)
    _expect_success(aws, _kept("rolling"))
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
    _expect_success(aws, kept={})  # keeps its fallback
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
