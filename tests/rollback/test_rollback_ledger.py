"""The rollback's conditional writes on a real (moto) ledger table: the claim is won once,
against the window's end too; what the release functions write is what `decide` reads;
a later release of the same fleet can be rolled back too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from phoenix.kernel import clock, ledger
from phoenix.kernel.ledger import Ledger
from phoenix.release.handlers import finalize
from phoenix.rollback.runtime import claims, logic
from phoenix.rollback.runtime.handler import handle
from tests.release.release_state import (
    AMI,
    PREVIOUS_AMI,
    RELEASE_ID,
    SETTINGS,
    TABLE,
    StubbedAws,
    expect_put_parameter,
    lambda_error,
    parameter,
    plan,
    release_state,
    step_input,
)
from tests.rollback.ledger_world import start, succeed
from tests.rollback.rollback_world import (
    ALARM_REASON,
    alarm,
    expect_emptied,
    expect_fleets,
    expect_rolled_back_event,
    expect_stopped,
    expect_weights,
    settings,
)

NEXT_RELEASE = "web-7d1e4b"


def _rolled_back_in_flight(dynamodb: Any, release: str) -> None:
    """What the rollback function writes for a release in flight."""
    assert claims.claim(Ledger(dynamodb, TABLE), "web", release, "in_flight", "e-1")
    Ledger(dynamodb, TABLE).close_release(
        "web", release, outcome="rolled back", reason="r", good_ami=PREVIOUS_AMI
    )
    assert Ledger(dynamodb, TABLE).release_lock("web", release)


def _decide(dynamodb: Any) -> logic.Decision:
    return logic.decide(Ledger(dynamodb, TABLE).fleet_item("web"), clock.now())


def test_a_release_in_flight_is_claimed_once(dynamodb: Any) -> None:
    start(dynamodb, RELEASE_ID)
    assert _decide(dynamodb) == logic.Decision("in_flight", RELEASE_ID)
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "in_flight", "e-1") is True
    # another event of the storm loses; the same event, delivered again, claims again
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "in_flight", "e-2") is False
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "in_flight", "e-1") is True


def test_a_release_that_no_longer_holds_the_lock_is_not_claimed(dynamodb: Any) -> None:
    start(dynamodb, RELEASE_ID)
    Ledger(dynamodb, TABLE).release_lock("web", RELEASE_ID)
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "in_flight", "e-1") is False


def test_a_release_claimed_in_flight_is_not_closed_as_succeeded(dynamodb: Any) -> None:
    # Given a rollback claimed the release in flight, as its Succeed step ran
    start(dynamodb, RELEASE_ID)
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "in_flight", "e-1")
    # When the step closes it: nothing is written
    assert not Ledger(dynamodb, TABLE).close_success(
        "web", RELEASE_ID, good_ami=AMI, previous_ami=PREVIOUS_AMI, window=None
    )
    item = Ledger(dynamodb, TABLE).fleet_item("web")
    assert "last_release" not in item
    assert item["flight"]["release"] == RELEASE_ID
    key = {"pk": {"S": "FLEET#web"}, "sk": {"S": f"RELEASE#{RELEASE_ID}"}}
    release = dynamodb.get_item(TableName=TABLE, Key=key)["Item"]
    assert release["outcome"] == {"S": ledger.IN_PROGRESS}


def test_a_success_not_yet_unlocked_is_rolled_back_from_its_window(dynamodb: Any) -> None:
    # Given a release closed as succeeded, its Succeed step not yet done (the lock held)
    start(dynamodb, RELEASE_ID)
    succeed(dynamodb, RELEASE_ID, timedelta(minutes=30), unlock=False)
    # Then it is no longer in flight, and its window is rolled back: the claim takes the lock
    assert _decide(dynamodb) == logic.Decision("window", RELEASE_ID)
    assert not claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "in_flight", "e-1")
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "window", "e-1")
    # and the step's unlock, when it comes, leaves the rollback's lock alone
    assert not Ledger(dynamodb, TABLE).release_lock("web", RELEASE_ID)
    item = Ledger(dynamodb, TABLE).fleet_item("web")
    assert item["lock_owner"] == f"window-rollback-{RELEASE_ID}"
    # and a retry of the step finds it rolled back
    assert not Ledger(dynamodb, TABLE).close_success(
        "web", RELEASE_ID, good_ami=AMI, previous_ami=PREVIOUS_AMI, window=None
    )


def test_while_the_old_slot_retires_the_rollback_is_tried_again_later(dynamodb: Any) -> None:
    # Given a success whose window's end is retiring its old slot (the lock held)
    start(dynamodb, RELEASE_ID)
    succeed(dynamodb, RELEASE_ID, timedelta(minutes=30))
    assert Ledger(dynamodb, TABLE).close_window("web", RELEASE_ID)
    Ledger(dynamodb, TABLE).acquire("web", RELEASE_ID, hold=timedelta(minutes=5))
    # Then a rollback waits for it (Lambda delivers the event again), then releases back
    assert _decide(dynamodb).action == "busy"
    Ledger(dynamodb, TABLE).release_lock("web", RELEASE_ID)
    assert _decide(dynamodb) == logic.Decision("release", RELEASE_ID)


def test_inside_the_window_the_success_is_claimed_once(dynamodb: Any) -> None:
    start(dynamodb, RELEASE_ID)
    succeed(dynamodb, RELEASE_ID, timedelta(minutes=30))
    assert _decide(dynamodb) == logic.Decision("window", RELEASE_ID)
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "window", "e-1") is True
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "window", "e-2") is False
    # the claim holds the fleet's lock: no release can start while it moves the fleet
    item = Ledger(dynamodb, TABLE).fleet_item("web")
    assert item["lock_owner"] == f"window-rollback-{RELEASE_ID}"
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "window", "e-1") is True
    assert _decide(dynamodb).action == "nothing"


def test_after_the_window_the_success_is_released_back(dynamodb: Any) -> None:
    start(dynamodb, RELEASE_ID)
    succeed(dynamodb, RELEASE_ID, timedelta(seconds=-1))
    assert _decide(dynamodb) == logic.Decision("release", RELEASE_ID)


def test_a_rolled_back_release_leaves_nothing_to_roll_back(dynamodb: Any) -> None:
    start(dynamodb, RELEASE_ID)
    _rolled_back_in_flight(dynamodb, RELEASE_ID)
    item = Ledger(dynamodb, TABLE).fleet_item("web")
    assert (item["last_good_ami"], item["last_outcome"]) == (PREVIOUS_AMI, "rolled back")
    assert "flight" not in item
    assert "lock_owner" not in item
    assert _decide(dynamodb).action == "nothing"


def test_a_later_release_of_a_rolled_back_fleet_can_be_claimed(dynamodb: Any) -> None:
    # (the claim's marker of the earlier rollback stays on the fleet item)
    start(dynamodb, RELEASE_ID)
    _rolled_back_in_flight(dynamodb, RELEASE_ID)
    start(dynamodb, NEXT_RELEASE)

    assert _decide(dynamodb) == logic.Decision("in_flight", NEXT_RELEASE)
    assert claims.claim(Ledger(dynamodb, TABLE), "web", NEXT_RELEASE, "in_flight", "e-1") is True


def test_an_alarm_rolls_back_a_release_after_an_earlier_rollback(dynamodb: Any) -> None:
    # Given a window rollback of RELEASE_ID, then the next release in flight
    start(dynamodb, RELEASE_ID)
    succeed(dynamodb, RELEASE_ID, timedelta(minutes=30))
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "window", "e-1")
    Ledger(dynamodb, TABLE).release_lock("web", claims.window_lock(RELEASE_ID))  # its end
    start(dynamodb, NEXT_RELEASE)

    # When an alarm of the fleet comes
    aws = StubbedAws()  # every service but DynamoDB
    aws.clients.provide("dynamodb", dynamodb)
    expect_fleets(aws, alarm())
    expect_weights(aws, serve="blue", drop="green")
    expect_stopped(aws, ALARM_REASON, release=NEXT_RELEASE)
    expect_emptied(aws, "green")
    expect_rolled_back_event(aws, release_id=NEXT_RELEASE, rollback="in_flight")
    result = handle(alarm(), settings(), aws.clients)
    aws.verify()

    # Then it is rolled back, not taken for a duplicate of the earlier one
    assert result == {"action": "in_flight", "fleet": "web", "release": NEXT_RELEASE}


def test_the_window_s_end_first_leaves_a_rollback_release(dynamodb: Any) -> None:
    # Given the window's end has begun retiring the old slot
    start(dynamodb, RELEASE_ID)
    succeed(dynamodb, RELEASE_ID, timedelta(minutes=30))
    assert Ledger(dynamodb, TABLE).close_window("web", RELEASE_ID) is True

    # Then no rollback moves traffic to that slot: an alarm releases the AMI before
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "window", "e-1") is False
    assert _decide(dynamodb) == logic.Decision("release", RELEASE_ID)
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "release", "e-1") is True


def test_a_later_release_ends_the_earlier_window(dynamodb: Any) -> None:
    start(dynamodb, RELEASE_ID)
    succeed(dynamodb, RELEASE_ID, timedelta(minutes=30))
    start(dynamodb, NEXT_RELEASE, active_slot="green", target_slot="blue")
    succeed(dynamodb, NEXT_RELEASE, timedelta(minutes=30))
    assert Ledger(dynamodb, TABLE).close_window("web", RELEASE_ID) is False
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "window", "e-1") is False


def test_a_rollback_inside_the_window_first_keeps_the_old_slot(dynamodb: Any) -> None:
    start(dynamodb, RELEASE_ID)
    succeed(dynamodb, RELEASE_ID, timedelta(minutes=30))
    assert claims.claim(Ledger(dynamodb, TABLE), "web", RELEASE_ID, "window", "e-1") is True
    assert Ledger(dynamodb, TABLE).close_window("web", RELEASE_ID) is False


# --- what the release functions leave for a later rollback ----------------------------------

EARLIER = "web-0e1a2b"
OLDEST_AMI = "ami-0ccccccccccccccc3"


def _finalized(dynamodb: Any, event: dict[str, Any], events: int, *queued: Any) -> None:
    """Run finalize on the moto ledger (every other service stubbed; `events` events put,
    their details unchecked)."""
    aws = StubbedAws()
    aws.clients.provide("dynamodb", dynamodb)
    for expect in queued:
        expect(aws)
    for _ in range(events):
        aws.events.add_response("put_events", {"FailedEntryCount": 0, "Entries": []})
    finalize.handle(event, SETTINGS, aws.clients)
    aws.verify()


def test_a_repeated_release_keeps_an_earlier_ami_to_roll_back_to(dynamodb: Any) -> None:
    # Given AMI released over OLDEST_AMI, then released again (rolling: no window)
    Ledger(dynamodb, TABLE).acquire("web", EARLIER, hold=ledger.LOCK_HOLD)
    assert Ledger(dynamodb, TABLE).close_success(
        "web", EARLIER, good_ami=AMI, previous_ami=OLDEST_AMI, window=None
    )
    Ledger(dynamodb, TABLE).release_lock("web", EARLIER)
    start(dynamodb, RELEASE_ID, strategy="rolling", active_slot="blue", target_slot="blue")
    state = release_state("rolling", plan=plan("rolling", from_ami=AMI))
    _finalized(
        dynamodb,
        step_input(state, "succeed"),
        2,
        lambda aws: expect_put_parameter(aws, parameter("blue", "launch-template-version"), "8"),
        lambda aws: expect_put_parameter(aws, "/phoenix/sandbox/web/ami", AMI),
    )

    # Then a rollback of it does not release AMI again
    item = Ledger(dynamodb, TABLE).fleet_item("web")
    assert item["last_good_ami"] == AMI
    assert _decide(dynamodb).action == "nothing" or item["previous_good_ami"] != AMI


def test_a_window_superseded_by_a_failed_release_is_not_rolled_back_to(dynamodb: Any) -> None:
    # Given EARLIER succeeded on green, blue (PREVIOUS_AMI) kept warm for 30 minutes
    start(dynamodb, EARLIER)
    succeed(dynamodb, EARLIER, timedelta(minutes=30))
    # When the next release takes blue as its target, and ends failed (its rollback failed)
    start(dynamodb, RELEASE_ID, active_slot="green", target_slot="blue", from_ami=AMI)
    error = lambda_error("ClientError", "ModifyListener: Throttling")
    _finalized(dynamodb, step_input(release_state(error=error), "failed"), 1)

    # Then an alarm does not send the traffic to blue as if it still ran PREVIOUS_AMI
    assert _decide(dynamodb).action != "window"
