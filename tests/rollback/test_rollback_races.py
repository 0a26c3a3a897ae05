"""Races around the rollback's claim: storms, a release that succeeds while traffic moves,
a rollback release started once, and a failure around the claim."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from phoenix.rollback.runtime.handler import handle
from tests.release.release_state import (
    PREVIOUS_AMI,
    RELEASE_ID,
    StubbedAws,
    expect_unlock,
)
from tests.rollback.rollback_world import (
    ALARM_ID,
    ALARM_REASON,
    SLOTTED,
    alarm,
    expect_claim,
    expect_closed,
    expect_emptied,
    expect_fleets,
    expect_read,
    expect_recorded,
    expect_refresh_rolled_back,
    expect_release_started,
    expect_rolled_back_event,
    expect_stopped,
    expect_weights,
    expect_window_restored,
    in_flight,
    settings,
    succeeded,
)

LOST = "ConditionalCheckFailedException"


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


LOST = "ConditionalCheckFailedException"


# --- storms: the claim is won once --------------------------------------------------------

CRITICAL_PATH: dict[str, Any] = {
    "canary": lambda aws: expect_weights(aws, "blue", "green"),
    "blue_green": lambda aws: expect_weights(aws, "blue", "green"),
    "rolling": expect_refresh_rolled_back,
}


@pytest.mark.parametrize("strategy", list(CRITICAL_PATH))
def test_a_second_alarm_of_a_storm_loses_the_claim_and_stops_there(
    aws: StubbedAws, strategy: str
) -> None:
    expect_fleets(aws, alarm("phoenix-sandbox-web-p99-latency"), strategy)
    # Given another alarm of the storm read the item too, and claimed the rollback first
    expect_read(aws, in_flight(strategy))
    CRITICAL_PATH[strategy](aws)
    expect_claim(aws, "in_flight", refused=LOST)
    expect_read(aws, in_flight(strategy) | {"rolled_back": RELEASE_ID, "rolled_back_by": "e-2"})

    result = handle(alarm("phoenix-sandbox-web-p99-latency"), settings(), aws.clients)

    # Then it did the (idempotent) critical path again, read the item again to see why
    # the claim was lost, and did nothing after the claim
    assert result == {"action": "duplicate", "fleet": "web", "release": RELEASE_ID}
    assert aws.calls[-2:] == ["dynamodb.UpdateItem", "dynamodb.GetItem"]
    assert len(aws.calls) == 5  # with the registry's read first


@pytest.mark.parametrize("strategy", SLOTTED)
def test_a_release_that_succeeded_while_traffic_moved_is_rolled_back_from_its_window(
    aws: StubbedAws, strategy: str
) -> None:
    expect_fleets(aws, alarm(), strategy)
    # Given traffic moved back for a release in flight, then the claim lost to the
    # release's own Succeed (it freed the lock and opened its rollback window)
    expect_read(aws, in_flight(strategy))
    expect_weights(aws, serve="blue", drop="green")
    expect_claim(aws, "in_flight", refused=LOST)
    expect_read(aws, succeeded(window=timedelta(minutes=20), old="blue"))
    # When it acts on what it reads now, Then it rolls the success back from its window
    # (the window's end would otherwise retire the slot traffic just went to)
    expect_read(aws, succeeded(window=timedelta(minutes=20), old="blue"))
    expect_claim(aws, "window")
    expect_weights(aws, serve="blue", drop="green")
    expect_window_restored(aws, "blue")
    expect_emptied(aws, "green")
    expect_recorded(aws, "window", "traffic restored", ALARM_REASON)
    expect_rolled_back_event(aws, strategy=strategy, reason=ALARM_REASON, rollback="window")
    expect_closed(aws, ALARM_REASON, good=PREVIOUS_AMI)
    expect_unlock(aws, release=f"window-rollback-{RELEASE_ID}")

    result = handle(alarm(), settings(), aws.clients)

    assert result == {"action": "window", "fleet": "web", "release": RELEASE_ID}


def test_a_window_rollback_that_loses_the_claim_moves_no_traffic(aws: StubbedAws) -> None:
    expect_fleets(aws, alarm())
    # Given another alarm claimed it first, or the window's end is retiring the old slot
    expect_read(aws, succeeded(window=timedelta(minutes=20)))
    expect_claim(aws, "window", refused=LOST)

    result = handle(alarm(), settings(), aws.clients)

    # Then no traffic goes to a slot that may be emptied under it
    assert result == {"action": "duplicate", "fleet": "web", "release": RELEASE_ID}
    assert aws.calls == ["ssm.GetParameters", "dynamodb.GetItem", "dynamodb.UpdateItem"]


def test_a_rollback_release_started_and_claimed_by_another_event_is_a_duplicate(
    aws: StubbedAws,
) -> None:
    expect_fleets(aws, alarm(), "rolling")
    # Every event of a storm asks for the one execution named after the release; the one
    # that started it claimed it too
    expect_read(aws, succeeded(window=None))
    expect_release_started(aws, ALARM_ID, ALARM_REASON, refused="ExecutionAlreadyExists")
    expect_claim(aws, "release", refused=LOST)
    expect_read(aws, succeeded(window=None) | {"rolled_back": RELEASE_ID})

    result = handle(alarm(), settings(), aws.clients)

    # Then it neither stops that execution nor tells of the rollback again
    assert result == {"action": "duplicate", "fleet": "web", "release": RELEASE_ID}
    assert aws.calls == [
        "ssm.GetParameters",
        "dynamodb.GetItem",
        "stepfunctions.StartExecution",
        "dynamodb.UpdateItem",
        "dynamodb.GetItem",
    ]


def test_a_rollback_release_started_but_not_claimed_is_claimed_by_the_next_delivery(
    aws: StubbedAws,
) -> None:
    expect_fleets(aws, alarm(), "rolling")
    # The delivery that started it failed before its claim; Lambda delivers it again
    expect_read(aws, succeeded(window=None))
    expect_release_started(aws, ALARM_ID, ALARM_REASON, refused="ExecutionAlreadyExists")
    expect_claim(aws, "release")
    expect_rolled_back_event(aws, reason=ALARM_REASON, rollback="release")

    result = handle(alarm(), settings(), aws.clients)

    # Then the release is claimed and told of: not left running unclaimed as a duplicate
    assert result == {"action": "release", "fleet": "web", "release": f"rollback-{RELEASE_ID}"}


def test_a_rollback_release_that_loses_the_claim_is_stopped(aws: StubbedAws) -> None:
    expect_fleets(aws, alarm(), "rolling")
    # Started, then the claim is lost (a newer release succeeded meanwhile): stopped
    # before its preflight can move anything
    expect_read(aws, succeeded(window=None))
    expect_release_started(aws, ALARM_ID, ALARM_REASON)
    expect_claim(aws, "release", refused=LOST)
    expect_read(aws, succeeded(window=None) | {"last_release": "web-newer"})
    expect_stopped(aws, "claim lost", release=f"rollback-{RELEASE_ID}")

    result = handle(alarm(), settings(), aws.clients)

    assert result == {"action": "duplicate", "fleet": "web", "release": RELEASE_ID}
    assert aws.calls == [
        "ssm.GetParameters",
        "dynamodb.GetItem",
        "stepfunctions.StartExecution",
        "dynamodb.UpdateItem",
        "dynamodb.GetItem",
        "stepfunctions.StopExecution",
    ]


def test_a_start_that_fails_claims_nothing(aws: StubbedAws) -> None:
    expect_fleets(aws, alarm(), "rolling")
    # StartExecution throttled: the event is retried; the release is not marked rolled back
    expect_read(aws, succeeded(window=None))
    expect_release_started(aws, ALARM_ID, ALARM_REASON, refused="ThrottlingException")

    with pytest.raises(ClientError, match="Throttling"):
        handle(alarm(), settings(), aws.clients)
    assert aws.calls == ["ssm.GetParameters", "dynamodb.GetItem", "stepfunctions.StartExecution"]


def test_a_ledger_error_on_the_claim_is_raised_after_the_critical_path(aws: StubbedAws) -> None:
    expect_fleets(aws, alarm())
    # The event is delivered again; the critical path already ran and runs again then
    expect_read(aws, in_flight())
    expect_weights(aws, serve="blue", drop="green")
    expect_claim(aws, "in_flight", refused="ProvisionedThroughputExceededException")

    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        handle(alarm(), settings(), aws.clients)
    assert aws.calls == [
        "ssm.GetParameters",
        "dynamodb.GetItem",
        "elbv2.ModifyListener",
        "dynamodb.UpdateItem",
    ]
