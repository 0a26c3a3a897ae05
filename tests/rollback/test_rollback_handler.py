"""The rollback function on an alarm of its fleet: from one read of the fleet item, a
release in flight gets its traffic (or refresh) back in one call, then is claimed once,
stopped, scaled in and closed; inside the rollback window the rollback is claimed (against
the window's end) and traffic goes back to the warm old slot; later the AMI before is
released again; else nothing happens (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from phoenix.kernel import clock, ledger
from phoenix.rollback.runtime.handler import handle
from tests.release.release_state import (
    PREVIOUS_AMI,
    RELEASE_ID,
    StubbedAws,
    expect_unlock,
    other,
)
from tests.rollback.rollback_world import (
    ALARM_ID,
    ALARM_REASON,
    REQUEST_ID,
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
    request,
    settings,
    succeeded,
)

LOST = "ConditionalCheckFailedException"


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


# --- a release in flight ------------------------------------------------------------------


@pytest.mark.parametrize("active", ["blue", "green"])
@pytest.mark.parametrize("strategy", SLOTTED)
def test_an_alarm_in_flight_puts_traffic_back_first_then_stops_and_closes_the_release(
    aws: StubbedAws, strategy: str, active: str
) -> None:
    expect_fleets(aws, alarm(), strategy)
    # Given a release of the other slot in flight (`active` serving PREVIOUS_AMI)
    target = other(active)
    expect_read(aws, in_flight(strategy, active))
    expect_weights(aws, serve=active, drop=target)
    expect_claim(aws, "in_flight")
    expect_stopped(aws, ALARM_REASON)
    expect_emptied(aws, target)
    expect_recorded(aws, "in_flight", "traffic restored", ALARM_REASON)
    expect_rolled_back_event(aws, strategy=strategy, reason=ALARM_REASON, rollback="in_flight")
    expect_closed(aws, ALARM_REASON, good=PREVIOUS_AMI)
    expect_unlock(aws)

    # When its 5xx alarm goes to ALARM
    result = handle(alarm(), settings(), aws.clients)

    # Then the critical path is one read and one ModifyListener; everything else after
    assert result == {"action": "in_flight", "fleet": "web", "release": RELEASE_ID}
    assert aws.calls == [
        "ssm.GetParameters",
        "dynamodb.GetItem",
        "elbv2.ModifyListener",
        "dynamodb.UpdateItem",  # the claim
        "stepfunctions.StopExecution",
        "ssm.PutParameter",  # the target slot's min size: 0
        "autoscaling.UpdateAutoScalingGroup",
        "dynamodb.UpdateItem",  # the step
        "events.PutEvents",  # told of before the close removes the flight
        "dynamodb.UpdateItem",  # the release item closed
        "dynamodb.UpdateItem",  # the fleet item: last good AMI = the flight's from_ami
        "dynamodb.UpdateItem",  # the lock released, last: a retry finds its claim till then
    ]


def test_an_alarm_in_flight_of_a_rolling_release_rolls_its_refresh_back(aws: StubbedAws) -> None:
    expect_fleets(aws, alarm(), "rolling")
    expect_read(aws, in_flight("rolling"))
    expect_refresh_rolled_back(aws)
    expect_claim(aws, "in_flight")
    expect_stopped(aws, ALARM_REASON)
    expect_recorded(aws, "in_flight", "rolled back", ALARM_REASON)
    expect_rolled_back_event(aws, strategy="rolling", rollback="in_flight")
    expect_closed(aws, ALARM_REASON)
    expect_unlock(aws)

    result = handle(alarm(), settings(), aws.clients)

    # Then no listener and no slot to empty: the refresh rollback is the critical path
    assert result["action"] == "in_flight"
    assert aws.calls[:4] == [
        "ssm.GetParameters",
        "dynamodb.GetItem",
        "autoscaling.RollbackInstanceRefresh",
        "dynamodb.UpdateItem",
    ]
    assert "elbv2.ModifyListener" not in aws.calls
    assert "autoscaling.UpdateAutoScalingGroup" not in aws.calls


def test_a_refresh_aws_already_rolls_back_closes_the_release(aws: StubbedAws) -> None:
    expect_fleets(aws, alarm(), "rolling")
    # Given AutoRollback got there first (AWS refuses a second rollback)
    expect_read(aws, in_flight("rolling"))
    expect_refresh_rolled_back(aws, refused="ActiveInstanceRefreshNotFound")
    expect_claim(aws, "in_flight")
    expect_stopped(aws, ALARM_REASON)
    expect_recorded(
        aws, "in_flight", "RollbackInProgress already (ActiveInstanceRefreshNotFound)", ALARM_REASON
    )
    expect_rolled_back_event(aws, rollback="in_flight")
    expect_closed(aws, ALARM_REASON)
    expect_unlock(aws)

    assert handle(alarm(), settings(), aws.clients)["action"] == "in_flight"


@pytest.mark.parametrize(
    ("refused", "status"),
    [
        ("ActiveInstanceRefreshNotFound", "Successful"),
        ("IrreversibleInstanceRefresh", "InProgress"),
    ],
)
def test_a_refresh_that_cannot_be_rolled_back_here_is_left_to_the_release(
    aws: StubbedAws, refused: str, status: str
) -> None:
    expect_fleets(aws, alarm(), "rolling")
    # Given a refresh that ended on the new version, or one AWS will not roll back
    expect_read(aws, in_flight("rolling"))
    expect_refresh_rolled_back(aws, refused=refused, status=status)

    result = handle(alarm(), settings(), aws.clients)

    # Then nothing is claimed or stopped: the release's gate fails on the alarm and its
    # own rollback path undoes the refresh (a refresh back, or a cancel first)
    assert result["action"] == "deferred"
    assert aws.calls == [
        "ssm.GetParameters",
        "dynamodb.GetItem",
        "autoscaling.RollbackInstanceRefresh",
        "autoscaling.DescribeInstanceRefreshes",
    ]


def test_an_execution_that_already_ended_is_no_error(aws: StubbedAws) -> None:
    expect_fleets(aws, alarm())
    expect_read(aws, in_flight())
    expect_weights(aws, serve="blue", drop="green")
    expect_claim(aws, "in_flight")
    expect_stopped(aws, ALARM_REASON, refused="ExecutionDoesNotExist")
    expect_emptied(aws, "green")
    expect_recorded(aws, "in_flight", "traffic restored", ALARM_REASON)
    expect_rolled_back_event(aws, rollback="in_flight")
    expect_closed(aws, ALARM_REASON)
    expect_unlock(aws)

    assert handle(alarm(), settings(), aws.clients)["action"] == "in_flight"


# --- inside the rollback window -----------------------------------------------------------


@pytest.mark.parametrize("old", ["blue", "green"])
@pytest.mark.parametrize("strategy", SLOTTED)
def test_an_alarm_inside_the_window_moves_traffic_back_to_the_warm_old_slot(
    aws: StubbedAws, strategy: str, old: str
) -> None:
    expect_fleets(aws, alarm(), strategy)
    # Given RELEASE_ID succeeded on the other slot and `old` is still warm
    new = other(old)
    expect_read(aws, succeeded(window=timedelta(minutes=20), old=old))
    expect_claim(aws, "window")
    expect_weights(aws, serve=old, drop=new)
    expect_window_restored(aws, old)
    expect_emptied(aws, new)
    expect_recorded(aws, "window", "traffic restored", ALARM_REASON)
    expect_rolled_back_event(aws, strategy=strategy, reason=ALARM_REASON, rollback="window")
    expect_closed(aws, ALARM_REASON, good=PREVIOUS_AMI)
    expect_unlock(aws, release=f"window-rollback-{RELEASE_ID}")

    result = handle(alarm(), settings(), aws.clients)

    # Then the claim (which takes the fleet's lock) comes before the traffic (the window's
    # end claims the same item under the opposite condition); no execution to stop
    assert result == {"action": "window", "fleet": "web", "release": RELEASE_ID}
    assert aws.calls == [
        "ssm.GetParameters",
        "dynamodb.GetItem",
        "dynamodb.UpdateItem",  # the claim
        "elbv2.ModifyListener",
        *["ssm.PutParameter"] * 3,  # old weight 100, new weight 0, pointer: previous AMI
        "ssm.PutParameter",  # the new slot's min size: 0
        "autoscaling.UpdateAutoScalingGroup",
        "dynamodb.UpdateItem",  # the step
        "events.PutEvents",
        "dynamodb.UpdateItem",  # the release item closed
        "dynamodb.UpdateItem",  # the fleet item: last good AMI = the previous AMI
        "dynamodb.UpdateItem",  # the window rollback's lock released
    ]


# --- after the window: a rollback release -------------------------------------------------

LATER = {"window passed": timedelta(seconds=-1), "no window (rolling)": None}


@pytest.mark.parametrize("case", LATER, ids=list(LATER))
def test_later_an_alarm_starts_a_release_of_the_previous_ami(aws: StubbedAws, case: str) -> None:
    expect_fleets(aws, alarm())
    expect_read(aws, succeeded(window=LATER[case]))
    expect_release_started(aws, ALARM_ID, ALARM_REASON)
    expect_claim(aws, "release")
    expect_rolled_back_event(aws, reason=ALARM_REASON, rollback="release")

    result = handle(alarm(), settings(), aws.clients)

    name = f"rollback-{RELEASE_ID}"
    assert result == {"action": "release", "fleet": "web", "release": name}
    assert aws.calls == [
        "ssm.GetParameters",
        "dynamodb.GetItem",
        "stepfunctions.StartExecution",
        "dynamodb.UpdateItem",
        "events.PutEvents",
    ]


def test_an_alarm_beyond_the_horizon_does_not_roll_back_but_a_request_does(
    aws: StubbedAws,
) -> None:
    expect_fleets(aws, alarm())
    expect_fleets(aws, request("Rollback Requested"))
    # The last release ended two days ago; the horizon is a day
    old = succeeded(window=None) | {"last_ended_at": ledger.iso(clock.now() - timedelta(days=2))}
    expect_read(aws, old)

    result = handle(alarm(), settings(), aws.clients)

    assert result["action"] == "nothing"
    assert "alarm horizon" in result["reason"]
    assert aws.calls == ["ssm.GetParameters", "dynamodb.GetItem"]

    # A person asking for it is another matter: a request has no horizon
    expect_read(aws, old)
    expect_release_started(aws, REQUEST_ID, "requested by alice: incident 42")
    expect_claim(aws, "release", event=REQUEST_ID)
    expect_rolled_back_event(aws, rollback="release")

    result = handle(request("Rollback Requested"), settings(), aws.clients)

    assert result["action"] == "release"


# --- nothing to roll back -----------------------------------------------------------------

NOTHING: dict[str, tuple[dict[str, Any] | None, str]] = {
    "no fleet item": (None, "no successful release to roll back"),
    "already rolled back": (
        succeeded(window=timedelta(minutes=20)) | {"last_outcome": "rolled back"},
        "no successful release to roll back",
    ),
    "a failed release": (
        {"last_release": RELEASE_ID, "last_outcome": "failed"},
        "no successful release to roll back",
    ),
    "a rollback in flight": (
        in_flight(rollback=True),
        "the release in flight is a rollback or starting",
    ),
    "no earlier AMI": (succeeded(window=None, previous=""), "no earlier AMI to go back to"),
}


@pytest.mark.parametrize("case", NOTHING, ids=list(NOTHING))
def test_with_nothing_to_roll_back_only_the_fleet_item_is_read(aws: StubbedAws, case: str) -> None:
    expect_fleets(aws, alarm())
    item, why = NOTHING[case]
    expect_read(aws, item)

    result = handle(alarm(), settings(), aws.clients)

    assert result == {"action": "nothing", "fleet": "web", "reason": why}
    assert aws.calls == ["ssm.GetParameters", "dynamodb.GetItem"]


def test_an_alarm_of_a_longer_named_fleet_rolls_that_fleet_back(aws: StubbedAws) -> None:
    # `web-api`'s alarms start with `phoenix-sandbox-web-` too: the longest name wins
    expect_fleets(aws, alarm("phoenix-sandbox-web-api-5xx-rate"), more=("web-api",))
    aws.dynamodb.add_response(
        "get_item",
        {},
        {
            "TableName": "ledger",
            "Key": {"pk": {"S": "FLEET#web-api"}, "sk": {"S": "FLEET"}},
            "ConsistentRead": True,
        },
    )
    event = alarm("phoenix-sandbox-web-api-5xx-rate")
    result = handle(event, settings(), aws.clients)
    assert result == {
        "action": "nothing",
        "fleet": "web-api",
        "reason": "no successful release to roll back",
    }
