"""The rollback path: traffic back to the active slot (blue_green, canary), or the
instance refresh undone (rolling) (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from phoenix.release.handlers.rollback import handle
from phoenix.release.runtime.strategy import RefreshStillCancellingError
from tests.release.release_state import (
    GROUPS,
    LISTENER,
    SETTINGS,
    SOURCE_VERSION,
    STARTED_AT,
    TARGET_GROUPS,
    TEMPLATES,
    StubbedAws,
    expect_put_parameter,
    expect_step,
    lambda_error,
    parameter,
    release_state,
    step_input,
)

ERROR = lambda_error("GateFailedError", "alarms in ALARM: phoenix-sandbox-web-5xx")
REASON = "GateFailedError: alarms in ALARM: phoenix-sandbox-web-5xx"


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


# --- blue_green and canary ------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["blue_green", "canary"])
def test_traffic_goes_back_to_the_active_slot_before_the_target_is_emptied(
    aws: StubbedAws, strategy: str
) -> None:
    # Given a release of green (blue serving) that failed its health gate
    aws.elbv2.add_response(
        "modify_listener",
        {},
        {
            "ListenerArn": LISTENER,
            "DefaultActions": [
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": TARGET_GROUPS["blue"], "Weight": 100},
                            {"TargetGroupArn": TARGET_GROUPS["green"], "Weight": 0},
                        ]
                    },
                }
            ],
        },
    )
    expect_put_parameter(aws, parameter("green", "min-size"), "0")
    aws.autoscaling.add_response(
        "update_auto_scaling_group",
        {},
        {"AutoScalingGroupName": GROUPS["green"], "MinSize": 0, "DesiredCapacity": 0},
    )
    expect_step(aws, "rolled back", action="traffic", reason=REASON)

    # When the rollback runs
    result = handle(step_input(release_state(strategy, error=ERROR)), SETTINGS, aws.clients)

    # Then every request is back on blue first, then green's minimum, then green emptied;
    # nothing to wait for
    assert result == {"wait": False, "action": "traffic", "reason": REASON, "refresh_id": None}
    assert aws.calls[:3] == [
        "elbv2.ModifyListener",
        "ssm.PutParameter",
        "autoscaling.UpdateAutoScalingGroup",
    ]


# --- rolling ------------------------------------------------------------------------------------


def _latest(
    aws: StubbedAws,
    status: str | None,
    *,
    started: timedelta = timedelta(minutes=2),
    back: bool = False,
) -> None:
    """The group's latest refresh: `status`, started `started` after the release (`back`:
    to the version before it, as the rollback's refresh back)."""
    refreshes: list[dict[str, Any]] = []
    if status is not None:
        refreshes = [
            {
                "InstanceRefreshId": "r-0100" if back else "r-0099",
                "AutoScalingGroupName": GROUPS["blue"],
                "Status": status,
                "StartTime": STARTED_AT + started,
                "PercentageComplete": 50,
            }
        ]
        if back:
            template = {"LaunchTemplateId": TEMPLATES["blue"], "Version": str(SOURCE_VERSION)}
            refreshes[0]["DesiredConfiguration"] = {"LaunchTemplate": template}
    aws.autoscaling.add_response(
        "describe_instance_refreshes",
        {"InstanceRefreshes": refreshes},
        {"AutoScalingGroupName": GROUPS["blue"], "MaxRecords": 1},
    )


def _expect_refresh_back(aws: StubbedAws) -> None:
    """A refresh to the version before the release, without AutoRollback or alarms (a
    rollback must not itself roll back) nor checkpoints."""
    aws.autoscaling.add_response(
        "start_instance_refresh",
        {"InstanceRefreshId": "r-0100"},
        {
            "AutoScalingGroupName": GROUPS["blue"],
            "Strategy": "Rolling",
            "DesiredConfiguration": {
                "LaunchTemplate": {
                    "LaunchTemplateId": TEMPLATES["blue"],
                    "Version": str(SOURCE_VERSION),
                }
            },
            "Preferences": {
                "MinHealthyPercentage": 100,
                "MaxHealthyPercentage": 200,
                "InstanceWarmup": 60,
                "SkipMatching": True,
                "AutoRollback": False,
                "BakeTime": 0,  # a refresh back to the last good version is not baked
                "ScaleInProtectedInstances": "Refresh",
                "StandbyInstances": "Terminate",
            },
        },
    )


def _roll_back(
    aws: StubbedAws, action: str, reason: str = REASON, refresh_id: str | None = None, **state: Any
) -> Any:
    """The rollback's result; its step names the refresh it waits for, if any."""
    waits = {"refresh_id": refresh_id} if refresh_id else {}
    expect_step(aws, "rolled back", action=action, reason=reason, **waits)
    return handle(step_input(release_state("rolling", **state)), SETTINGS, aws.clients)


def _waits(action: str, refresh_id: str) -> dict[str, Any]:
    return {"wait": True, "action": action, "reason": REASON, "refresh_id": refresh_id}


@pytest.mark.parametrize("status", ["Pending", "InProgress", "Baking"])
def test_this_releases_running_refresh_is_rolled_back(aws: StubbedAws, status: str) -> None:
    _latest(aws, status)
    aws.autoscaling.add_response(
        "rollback_instance_refresh",
        {"InstanceRefreshId": "r-0099"},
        {"AutoScalingGroupName": GROUPS["blue"]},
    )

    result = _roll_back(aws, "rollback", refresh_id="r-0099", error=ERROR)

    # Then the state machine waits for the rollback's end (same refresh id)
    assert result == _waits("rollback", "r-0099")


def test_an_irreversible_refresh_is_cancelled_and_replaced_by_one_back(aws: StubbedAws) -> None:
    # Given AWS refuses to roll the running refresh back
    _latest(aws, "InProgress")
    aws.autoscaling.add_client_error(
        "rollback_instance_refresh",
        service_error_code="IrreversibleInstanceRefresh",
        service_message="The instance refresh cannot be rolled back.",
        expected_params={"AutoScalingGroupName": GROUPS["blue"]},
    )
    aws.autoscaling.add_response(
        "cancel_instance_refresh",
        {"InstanceRefreshId": "r-0099"},
        {"AutoScalingGroupName": GROUPS["blue"]},
    )

    # When the rollback runs, Then the refresh is cancelled, and the step fails for the
    # state machine to retry (a cancel takes time): no refresh started, no step recorded
    event = step_input(release_state("rolling", error=ERROR))
    with pytest.raises(RefreshStillCancellingError, match="cancelling it first"):
        handle(event, SETTINGS, aws.clients)
    assert aws.calls == [
        "autoscaling.DescribeInstanceRefreshes",
        "autoscaling.RollbackInstanceRefresh",
        "autoscaling.CancelInstanceRefresh",
    ]

    # When the retry finds the refresh Cancelled, Then it starts the refresh back
    _latest(aws, "Cancelled")
    _expect_refresh_back(aws)
    result = _roll_back(aws, "refresh", refresh_id="r-0100", error=ERROR)
    assert result == _waits("refresh", "r-0100")
    assert aws.calls[3:5] == [
        "autoscaling.DescribeInstanceRefreshes",
        "autoscaling.StartInstanceRefresh",
    ]


def test_a_refresh_still_cancelling_is_retried_without_a_call(aws: StubbedAws) -> None:
    _latest(aws, "Cancelling")
    with pytest.raises(RefreshStillCancellingError, match="still cancelling"):
        handle(step_input(release_state("rolling", error=ERROR)), SETTINGS, aws.clients)
    assert aws.calls == ["autoscaling.DescribeInstanceRefreshes"]


def test_any_other_refusal_of_the_rollback_is_raised(aws: StubbedAws) -> None:
    _latest(aws, "InProgress")
    aws.autoscaling.add_client_error(
        "rollback_instance_refresh", service_error_code="ActiveInstanceRefreshNotFound"
    )
    with pytest.raises(ClientError, match="ActiveInstanceRefreshNotFound"):
        handle(step_input(release_state("rolling", error=ERROR)), SETTINGS, aws.clients)
    assert "autoscaling.CancelInstanceRefresh" not in aws.calls


@pytest.mark.parametrize("status", ["Successful", "RollbackFailed"])
def test_a_finished_refresh_is_followed_by_a_refresh_back(aws: StubbedAws, status: str) -> None:
    # Given the refresh already finished on the new version (then failed the health gate)
    _latest(aws, status)
    _expect_refresh_back(aws)

    result = _roll_back(aws, "refresh", refresh_id="r-0100", error=ERROR)

    assert result == _waits("refresh", "r-0100")


NOTHING_TO_UNDO = {
    "already rolled back": ("RollbackSuccessful", timedelta(minutes=2)),
    "an earlier release's refresh": ("InProgress", -timedelta(hours=3)),
    "an earlier release's finished refresh": ("Successful", -timedelta(days=2)),
    "an earlier release's cancelling refresh": ("Cancelling", -timedelta(hours=1)),
    "no refresh at all": (None, timedelta(0)),
}


@pytest.mark.parametrize("case", NOTHING_TO_UNDO, ids=list(NOTHING_TO_UNDO))
def test_a_refresh_that_changed_nothing_of_this_release_is_left_alone(
    aws: StubbedAws, case: str
) -> None:
    status, started = NOTHING_TO_UNDO[case]
    _latest(aws, status, started=started)

    result = _roll_back(aws, "nothing", error=ERROR)

    assert result == {"wait": False, "action": "nothing", "reason": REASON, "refresh_id": None}
    assert [c for c in aws.calls if c.startswith("autoscaling.")] == [
        "autoscaling.DescribeInstanceRefreshes"
    ]


def test_a_rollback_already_in_progress_is_awaited_without_a_call(aws: StubbedAws) -> None:
    _latest(aws, "RollbackInProgress")
    result = _roll_back(aws, "rollback", refresh_id="r-0099", error=ERROR)
    assert result == _waits("rollback", "r-0099")
    assert [c for c in aws.calls if c.startswith("autoscaling.")] == [
        "autoscaling.DescribeInstanceRefreshes"
    ]


def test_without_a_caught_error_the_reason_says_rollback_requested(aws: StubbedAws) -> None:
    _latest(aws, None)
    result = _roll_back(aws, "nothing", reason="rollback requested")
    assert result["reason"] == "rollback requested"


def test_a_long_reason_is_shortened_for_the_ledger_and_the_state(aws: StubbedAws) -> None:
    long = lambda_error("GateFailedError", "x" * 3000)
    _latest(aws, None)
    result = _roll_back(aws, "nothing", reason=("GateFailedError: " + "x" * 3000)[:500], error=long)
    assert len(result["reason"]) == 1000


@pytest.mark.parametrize("status", ["Cancelled", "Failed"])
def test_a_cancelled_refresh_that_replaced_instances_is_followed_by_a_refresh_back(
    aws: StubbedAws, status: str
) -> None:
    # Given this release's refresh was cancelled (or failed) halfway (PercentageComplete 50):
    # the instances it replaced stay on the new AMI
    _latest(aws, status)
    _expect_refresh_back(aws)

    result = _roll_back(aws, "refresh", refresh_id="r-0100", error=ERROR)

    # Then a refresh back replaces them (SkipMatching leaves the others)
    assert result == _waits("refresh", "r-0100")


@pytest.mark.parametrize("status", ["Pending", "InProgress", "Baking", "Failed", "Cancelled"])
def test_a_retried_rollback_awaits_its_own_refresh_back_without_a_call(
    aws: StubbedAws, status: str
) -> None:
    # Given the step's first attempt started the refresh back (the Lambda answer was lost)
    _latest(aws, status, back=True)

    # When the step runs again
    result = _roll_back(aws, "refresh", refresh_id="r-0100", error=ERROR)

    # Then it waits for that refresh, however it ends (its poll says), and neither rolls
    # it back (that would put the new version back) nor starts another
    assert result == _waits("refresh", "r-0100")
    assert [c for c in aws.calls if c.startswith("autoscaling.")] == [
        "autoscaling.DescribeInstanceRefreshes"
    ]


def test_a_retried_rollback_whose_refresh_back_succeeded_has_nothing_left(
    aws: StubbedAws,
) -> None:
    _latest(aws, "Successful", back=True)
    result = _roll_back(aws, "nothing", error=ERROR)
    assert result == {"wait": False, "action": "nothing", "reason": REASON, "refresh_id": None}
