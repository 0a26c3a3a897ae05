"""A rollback whose function failed after its claim, delivered again (Lambda retries an
asynchronous event twice): it finishes every step after the claim, moves no traffic it
had moved in flight (a window's move, after its claim, is made again), and acts once.
The ledger is moto's, every other service stubbed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from phoenix.kernel.ledger import Ledger
from phoenix.rollback.runtime import claims
from phoenix.rollback.runtime.handler import handle
from tests.release.release_state import AMI, PREVIOUS_AMI, RELEASE_ID, TABLE, StubbedAws
from tests.rollback.ledger_world import start, succeed
from tests.rollback.rollback_world import (
    ALARM_REASON,
    alarm,
    expect_emptied,
    expect_fleets,
    expect_release_started,
    expect_rolled_back_event,
    expect_stopped,
    expect_weights,
    expect_window_restored,
    settings,
)


def _rolling_back(dynamodb: Any, *queued: Any) -> StubbedAws:
    """The rollback function's world: the moto ledger, every other service stubbed."""
    aws = StubbedAws()
    aws.clients.provide("dynamodb", dynamodb)
    expect_fleets(aws, alarm())
    for expect in queued:
        expect(aws)
    return aws


def _delivered(dynamodb: Any, *queued: Any) -> tuple[dict[str, Any], list[str]]:
    """The alarm's event handled in that world, every queued answer used: what the
    function answered, and the calls it made."""
    aws = _rolling_back(dynamodb, *queued)
    result = handle(alarm(), settings(), aws.clients)
    aws.verify()
    return result, aws.calls


def test_a_rollback_in_flight_that_failed_after_its_claim_is_finished_when_delivered_again(
    dynamodb: Any,
) -> None:
    # Given a canary release in flight whose alarm's rollback moved the traffic, claimed
    # it, and then failed to tell of it (PutEvents refused the entry)
    start(dynamodb, RELEASE_ID)
    first = _rolling_back(
        dynamodb,
        lambda aws: expect_weights(aws, serve="blue", drop="green"),
        lambda aws: expect_stopped(aws, ALARM_REASON),
        lambda aws: expect_emptied(aws, "green"),
        lambda aws: aws.events.add_response(
            "put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]}
        ),
    )
    with pytest.raises(Exception, match="InternalFailure"):
        handle(alarm(), settings(), first.clients)
    first.verify()
    assert Ledger(dynamodb, TABLE).fleet_item("web")["lock_owner"] == RELEASE_ID

    # When Lambda delivers the same event again: no traffic moved twice, the rest done
    result, calls = _delivered(
        dynamodb,
        lambda aws: expect_stopped(aws, ALARM_REASON),
        lambda aws: expect_emptied(aws, "green"),
        lambda aws: expect_rolled_back_event(aws, reason=ALARM_REASON, rollback="in_flight"),
    )

    # Then the release is closed, the fleet free and back on the AMI before
    assert result["action"] == "in_flight"
    item = Ledger(dynamodb, TABLE).fleet_item("web")
    assert "lock_owner" not in item
    assert "flight" not in item
    assert item["last_good_ami"] == PREVIOUS_AMI
    assert item["last_outcome"] == "rolled back"
    assert "elbv2.ModifyListener" not in calls

    # And a third delivery (EventBridge delivers at least once) does nothing
    assert _delivered(dynamodb)[0]["action"] == "nothing"


def test_a_rollback_release_claimed_by_an_event_that_failed_to_tell_of_it_is_told_again(
    dynamodb: Any,
) -> None:
    # Given a rolling success with nothing warm, rolled back by a rollback release whose
    # starter claimed it and then failed before its event
    start(dynamodb, RELEASE_ID, strategy="rolling", active_slot="blue", target_slot="blue")
    assert Ledger(dynamodb, TABLE).close_success(
        "web", RELEASE_ID, good_ami=AMI, previous_ami=PREVIOUS_AMI, window=None
    )
    Ledger(dynamodb, TABLE).release_lock("web", RELEASE_ID)
    event_id = alarm()["id"]
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "release", event_id)

    # When the same event is delivered again
    result, _ = _delivered(
        dynamodb,
        lambda aws: expect_release_started(
            aws, event_id, ALARM_REASON, refused="ExecutionAlreadyExists"
        ),
        lambda aws: expect_rolled_back_event(aws, reason=ALARM_REASON, rollback="release"),
    )

    # Then it is told of, and another event of the storm is a duplicate
    assert result["action"] == "release"
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "release", "e-2") is False


def test_a_window_rollback_claimed_before_its_traffic_move_failed_moves_it_when_delivered_again(
    dynamodb: Any,
) -> None:
    # Given a canary success inside its window, whose rollback claimed it (taking the
    # fleet's lock) and then failed on its traffic call
    start(dynamodb, RELEASE_ID)
    succeed(dynamodb, RELEASE_ID, timedelta(minutes=20))
    first = _rolling_back(
        dynamodb,
        lambda aws: aws.elbv2.add_client_error(
            "modify_listener", "Throttling", http_status_code=400
        ),
    )
    with pytest.raises(Exception, match="Throttling"):
        handle(alarm(), settings(), first.clients)
    first.verify()

    # When the same event is delivered again: its claim stands, and the traffic moves
    result, _ = _delivered(
        dynamodb,
        lambda aws: expect_weights(aws, serve="blue", drop="green"),
        lambda aws: expect_window_restored(aws, "blue"),
        lambda aws: expect_emptied(aws, "green"),
        lambda aws: expect_rolled_back_event(aws, reason=ALARM_REASON, rollback="window"),
    )

    # Then the fleet is back on the AMI before and free
    assert result["action"] == "window"
    item = Ledger(dynamodb, TABLE).fleet_item("web")
    assert item["last_good_ami"] == PREVIOUS_AMI
    assert "lock_owner" not in item
    assert "warm_slot" not in item


def test_a_window_rollback_that_failed_after_closing_frees_its_lock_when_delivered_again(
    dynamodb: Any,
) -> None:
    # Given a window rollback that moved traffic, closed the release and then failed
    # before freeing the window rollback's lock
    start(dynamodb, RELEASE_ID)
    succeed(dynamodb, RELEASE_ID, timedelta(minutes=20))
    book = Ledger(dynamodb, TABLE)
    assert claims.claim(book, "web", RELEASE_ID, "window", alarm()["id"])
    book.close_release("web", RELEASE_ID, outcome="rolled back", reason="r", good_ami=PREVIOUS_AMI)

    # When the same event is delivered again: nothing moves, the lock is freed
    result, calls = _delivered(dynamodb)
    assert result["action"] == "window"
    assert calls == ["ssm.GetParameters"]
    assert "lock_owner" not in Ledger(dynamodb, TABLE).fleet_item("web")
