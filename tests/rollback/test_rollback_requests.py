"""The rollback function on requests (rollback, pause, resume) and on the events it must
refuse without a call; AWS's sample alarm event (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from phoenix.rollback.runtime.events import AlarmStateChange
from phoenix.rollback.runtime.handler import handle
from tests.release.release_state import (
    PREVIOUS_AMI,
    RELEASE_ID,
    TABLE,
    StubbedAws,
    expect_unlock,
    fleet_key,
)
from tests.rollback.rollback_world import (
    ALARM_ID,
    ALARM_NAME,
    ALARM_REASON,
    REQUEST_ID,
    SAMPLE_ALARM,
    alarm,
    expect_claim,
    expect_closed,
    expect_emptied,
    expect_fleets,
    expect_read,
    expect_recorded,
    expect_rolled_back_event,
    expect_stopped,
    expect_weights,
    expect_window_restored,
    in_flight,
    request,
    settings,
    succeeded,
)


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


def _expect_in_flight_rollback(aws: StubbedAws, reason: str, event: str = ALARM_ID) -> None:
    if event == ALARM_ID:
        expect_fleets(aws, alarm())
    expect_read(aws, in_flight())
    expect_weights(aws, serve="blue", drop="green")
    expect_claim(aws, "in_flight", event=event)
    expect_stopped(aws, reason)
    expect_emptied(aws, "green")
    expect_recorded(aws, "in_flight", "traffic restored", reason)
    expect_rolled_back_event(aws, reason=reason, rollback="in_flight")
    expect_closed(aws, reason, good=PREVIOUS_AMI)
    expect_unlock(aws)


# --- requests -----------------------------------------------------------------------------

WHY = {"incident 42": "requested by alice: incident 42", "": "requested by alice"}


@pytest.mark.parametrize("given", WHY, ids=["with a reason", "without a reason"])
def test_a_rollback_request_rolls_back_like_an_alarm(aws: StubbedAws, given: str) -> None:
    expect_fleets(aws, request("Rollback Requested", reason=given))
    _expect_in_flight_rollback(aws, WHY[given], event=REQUEST_ID)

    result = handle(request("Rollback Requested", reason=given), settings(), aws.clients)

    assert result == {"action": "in_flight", "fleet": "web", "release": RELEASE_ID}
    assert aws.calls[:3] == ["ssm.GetParameters", "dynamodb.GetItem", "elbv2.ModifyListener"]


def test_releases_paused_sets_paused_with_the_reason_in_one_write(aws: StubbedAws) -> None:
    expect_fleets(aws, request("Releases Paused"))
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": "SET paused = :true, paused_reason = :why",
            "ExpressionAttributeValues": {
                ":true": {"BOOL": True},
                ":why": {"S": "requested by alice: incident 42"},
            },
        },
    )

    result = handle(request("Releases Paused"), settings(), aws.clients)

    assert result == {"action": "paused", "fleet": "web"}
    assert aws.calls == ["ssm.GetParameters", "dynamodb.UpdateItem"]


def test_releases_resumed_removes_paused_in_one_write(aws: StubbedAws) -> None:
    expect_fleets(aws, request("Releases Resumed", reason=""))
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": "REMOVE paused, paused_reason",
        },
    )

    result = handle(request("Releases Resumed", reason=""), settings(), aws.clients)

    assert result == {"action": "resumed", "fleet": "web"}
    assert aws.calls == ["ssm.GetParameters", "dynamodb.UpdateItem"]


# --- refused without a call ---------------------------------------------------------------

REFUSED: dict[str, tuple[Any, str]] = {
    "an alarm back to OK": (alarm(state="OK"), "alarm state is OK, not ALARM"),
    "an alarm without data": (
        alarm(state="INSUFFICIENT_DATA"),
        "alarm state is INSUFFICIENT_DATA, not ALARM",
    ),
    "another environment's alarm": (
        alarm("phoenix-production-web-5xx-rate"),
        "alarm phoenix-production-web-5xx-rate is no fleet's in sandbox",
    ),
    "another fleet's alarm": (  # read from the registry: not there
        alarm("phoenix-sandbox-webby-5xx-rate"),
        "alarm phoenix-sandbox-webby-5xx-rate is no fleet's in sandbox",
    ),
    "an alarm named like the fleet": (
        alarm("phoenix-sandbox-web"),
        "alarm phoenix-sandbox-web is no fleet's in sandbox",
    ),
    "AWS's sample alarm": (SAMPLE_ALARM, "alarm ServerCpuTooHigh is no fleet's in sandbox"),
    "a rollback of an unknown fleet": (  # read from the registry: not there
        request("Rollback Requested", fleet="db"),
        "no fleet 'db' in sandbox",
    ),
    "a pause of an unknown fleet": (  # read from the registry: not there
        request("Releases Paused", fleet="db"),
        "no fleet 'db' in sandbox",
    ),
    "a list": ([alarm()], "the event is a list, not an object"),
    "a string": ("phoenix-sandbox-web-5xx-rate", "the event is a str, not an object"),
    "nothing": (None, "the event is a NoneType, not an object"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_events_with_nothing_to_do_here_are_refused_with_at_most_the_registry_read(
    aws: StubbedAws, case: str
) -> None:
    event, reason = REFUSED[case]
    reads = case in {"another fleet's alarm", "a rollback of an unknown fleet"}
    reads |= case == "a pause of an unknown fleet"
    if reads:
        expect_fleets(aws, event)
    assert handle(event, settings(), aws.clients) == {"action": "refused", "reason": reason}
    assert aws.calls == (["ssm.GetParameters"] if reads else [])


@pytest.mark.parametrize(
    "event",
    [
        request("Release Requested"),
        alarm() | {"source": "phoenix"},
        request("Rollback Requested") | {"source": "aws.cloudwatch"},
    ],
    ids=["another phoenix request", "an alarm from phoenix", "a request from cloudwatch"],
)
def test_an_event_of_the_wrong_shape_is_refused_with_the_validation_error(
    aws: StubbedAws, event: dict[str, Any]
) -> None:
    result = handle(event, settings(), aws.clients)
    assert result["action"] == "refused"
    assert "validation error" in result["reason"]
    assert aws.calls == []


# --- AWS's sample alarm event -------------------------------------------------------------


def test_the_aws_sample_alarm_event_parses_with_alarm_state_change() -> None:
    parsed = AlarmStateChange.model_validate(SAMPLE_ALARM)
    assert parsed.detail.alarm_name == "ServerCpuTooHigh"
    assert parsed.detail.state.value == "ALARM"
    assert parsed.detail.state.timestamp == "2019-10-02T17:04:40.989+0000"
    assert parsed.detail.state.reason.startswith("Threshold Crossed")
    assert parsed.id == "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92"


def test_the_sample_alarm_of_a_fleet_rolls_its_release_back(aws: StubbedAws) -> None:
    _expect_in_flight_rollback(aws, ALARM_REASON)
    event = alarm()
    assert event["detail"]["alarmName"] == ALARM_NAME
    assert handle(event, settings(), aws.clients)["action"] == "in_flight"


def test_an_alarm_without_a_state_timestamp_is_timed_from_the_event(aws: StubbedAws) -> None:
    _expect_in_flight_rollback(aws, ALARM_REASON)
    event = alarm()
    del event["detail"]["state"]["timestamp"]
    assert handle(event, settings(), aws.clients)["action"] == "in_flight"


def _expect_window_rollback(aws: StubbedAws, reason: str) -> None:
    expect_fleets(aws, alarm())
    expect_read(aws, succeeded(window=timedelta(minutes=20)))
    expect_claim(aws, "window")
    expect_weights(aws, serve="blue", drop="green")
    expect_window_restored(aws, "blue")
    expect_emptied(aws, "green")
    expect_recorded(aws, "window", "traffic restored", reason)
    expect_rolled_back_event(aws, reason=reason, rollback="window")
    expect_closed(aws, reason, good=PREVIOUS_AMI)
    expect_unlock(aws, release=f"window-rollback-{RELEASE_ID}")


HALF_WAY = {"in_flight": _expect_in_flight_rollback, "window": _expect_window_rollback}


@pytest.mark.parametrize("how", HALF_WAY)
def test_an_unparseable_state_timestamp_does_not_abort_the_rollback(how: str) -> None:
    aws = StubbedAws()  # not verified: with the bug, the queue is left half consumed
    HALF_WAY[how](aws, ALARM_REASON)
    event = alarm()
    event["detail"]["state"]["timestamp"] = "02/10/2019 17:04"
    assert AlarmStateChange.model_validate(event)  # the model accepts it

    try:
        assert handle(event, settings(), aws.clients)["action"] == how
    finally:
        Metrics().clear_metrics()
    assert aws.calls[-1] == "dynamodb.UpdateItem"  # the lock released, the last step
