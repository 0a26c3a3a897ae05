"""The old slot retired after the rollback window: the window ended on condition it is
still the release's, the slot emptied under the lock (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY

from phoenix.kernel import ledger
from phoenix.release.handlers.finalize import handle
from phoenix.release.lock_wait import ROLLBACK_LOCK_ATTEMPTS, ROLLBACK_LOCK_WAIT_SECONDS
from phoenix.release.runtime.finalize import RETIRE_HOLD
from tests.release.release_state import (
    AMI,
    GROUPS,
    PREVIOUS_AMI,
    RELEASE_ID,
    SETTINGS,
    TABLE,
    IsoAfter,
    StubbedAws,
    conditional_check_failed,
    expect_put_parameter,
    expect_unlock,
    fleet_key,
    parameter,
    release_state,
    step_input,
)
from tests.release.test_rollback_targets import expect_fleet_read


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


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
    expect_fleet_read(aws, held=[AMI, PREVIOUS_AMI])  # its AMI is still the previous good one
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


def _expect_scale_in_throttled(aws: StubbedAws) -> None:
    """The retire step locks, sets the old slot's minimum to 0, is throttled emptying
    the group, and unlocks."""
    _expect_lock(aws)
    expect_put_parameter(aws, parameter("blue", "min-size"), "0")
    aws.autoscaling.add_client_error("update_auto_scaling_group", service_error_code="Throttling")
    expect_unlock(aws)


def test_retire_run_again_after_its_scale_in_failed_finishes_it(aws: StubbedAws) -> None:
    # Given the window this release closed itself before its scale-in failed: still its
    # success, no window left (the step's retry, bench/reliability.py found it needed)
    _expect_window_closed(aws, refused=True)
    _fleet_item(aws, **OURS)
    _expect_scale_in_throttled(aws)

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
    _expect_scale_in_throttled(aws)

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
    expect_fleet_read(aws, held=[AMI, PREVIOUS_AMI])
    expect_unlock(aws)

    result = handle(step_input(release_state(), "retire"), SETTINGS, aws.clients)

    assert result == {"retired": True}


def test_a_rollback_release_waits_past_the_longest_retire_hold() -> None:
    # The retire of the release a rollback release undoes may take the lock between the
    # rollback function's decision and that release's preflight: the release waits for
    # it (tests/integration/test_rollback.py) longer than the retire may hold it.
    waited = timedelta(seconds=ROLLBACK_LOCK_WAIT_SECONDS * ROLLBACK_LOCK_ATTEMPTS)
    assert waited > RETIRE_HOLD
