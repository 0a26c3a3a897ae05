"""Polling an instance refresh (Stubber): the rollback's refresh, read after its event or
when none came in time, ends the release `rolled back` only when the fleet is back;
and neither poll takes another refresh of the group for this release's.

Per the Auto Scaling API reference (InstanceRefresh, Status), a rollback is back on the
previous configuration when RollbackSuccessful, a refresh back when Successful;
RollbackFailed, Failed and Cancelled leave the fleet where they stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from phoenix.release.handlers.deploy import handle as deploy
from phoenix.release.handlers.rollback import handle as rollback
from phoenix.release.runtime.models import MalformedStepError
from phoenix.release.runtime.strategy import ForeignRefreshError
from tests.release.release_state import (
    GROUPS,
    SETTINGS,
    SOURCE_VERSION,
    STARTED_AT,
    TEMPLATES,
    VERSION,
    StubbedAws,
    lambda_error,
    release_state,
    step_input,
)

REASON = "GateFailedError: alarms in ALARM: phoenix-sandbox-web-5xx"
ROLLBACK_ID = "r-0100"


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


def _latest(
    aws: StubbedAws,
    status: str | None,
    *,
    refresh_id: str = ROLLBACK_ID,
    reason: str = "",
    version: int = SOURCE_VERSION,
    started: timedelta = timedelta(minutes=20),
) -> None:
    """The group's latest refresh (DescribeInstanceRefreshes, newest first)."""
    refreshes = []
    if status is not None:
        refreshes = [
            {
                "InstanceRefreshId": refresh_id,
                "AutoScalingGroupName": GROUPS["blue"],
                "Status": status,
                "StartTime": STARTED_AT + started,
                "DesiredConfiguration": {
                    "LaunchTemplate": {
                        "LaunchTemplateId": TEMPLATES["blue"],
                        "Version": str(version),
                    }
                },
            }
        ]
        if reason:  # (AWS leaves it out rather than empty)
            refreshes[0]["StatusReason"] = reason
    aws.autoscaling.add_response(
        "describe_instance_refreshes",
        {"InstanceRefreshes": refreshes},
        {"AutoScalingGroupName": GROUPS["blue"], "MaxRecords": 1},
    )


def _rolled_back(action: str, **polled: Any) -> dict[str, Any]:
    """The state after Rollback (`action`: rollback or refresh) and earlier polls."""
    state = release_state(
        "rolling",
        error=lambda_error("GateFailedError", "alarms in ALARM: phoenix-sandbox-web-5xx"),
        rollback={"wait": True, "action": action, "reason": REASON, "refresh_id": ROLLBACK_ID},
    )
    if polled:
        state["rollback_refresh"] = polled
    return state


def _poll(aws: StubbedAws, state: dict[str, Any]) -> Any:
    return rollback(step_input(state, "poll"), SETTINGS, aws.clients)


# --- the rollback's refresh, polled -------------------------------------------------------

# (what Rollback did, the refresh's status, its reason) -> the fleet is back
ENDED = [
    ("rollback", "RollbackSuccessful", "", True),
    ("refresh", "Successful", "", True),
    ("rollback", "RollbackFailed", "Instances failed to launch", False),
    ("rollback", "Failed", "Instances failed to launch", False),
    ("rollback", "Cancelled", "Cancelled by the user.", False),
    ("refresh", "Failed", "Instances failed to launch", False),
    ("refresh", "Cancelled", "Cancelled by the user.", False),
    # the refresh back, itself rolled back (by someone): the fleet is on the new AMI again
    ("refresh", "RollbackSuccessful", "Rollback requested by the user.", False),
    # a rollback that did not take: its refresh went on to the new version
    ("rollback", "Successful", "", False),
]


@pytest.mark.parametrize(
    ("action", "status", "reason", "back"),
    ENDED,
    ids=[f"{action}-{status}" for action, status, _, _ in ENDED],
)
def test_the_rollback_is_back_only_when_its_refresh_ended_on_the_previous_version(
    aws: StubbedAws, action: str, status: str, reason: str, back: bool
) -> None:
    # Given the rollback's own refresh ended (this release's: the id Rollback recorded)
    _latest(aws, status, reason=reason, version=VERSION if action == "rollback" else 7)

    # When the rollback's refresh is polled (after its event, or when none came)
    result = _poll(aws, _rolled_back(action))

    # Then one read, nothing written; the fleet is back only on the status that says so,
    # and otherwise the ledger will say what the refresh ended as, and why
    assert aws.calls == ["autoscaling.DescribeInstanceRefreshes"]
    assert (result["status"], result["reason"], result["back"]) == (status, reason, back)
    if back:
        assert result["summary"] == ""
    else:
        assert result["summary"] == (
            f"the rollback's instance refresh {ROLLBACK_ID} ended {status}: "
            f"{reason or 'no reason given'}"
        )


# (the previous poll, if any) -> polls left after this one
STILL_RUNNING: list[tuple[dict[str, Any], int]] = [
    ({}, 2),
    ({"status": "RollbackInProgress", "polls_left": 2}, 1),
    ({"status": "RollbackInProgress", "polls_left": 1}, 0),
]


@pytest.mark.parametrize(("previous", "left"), STILL_RUNNING)
def test_a_rollback_still_running_is_polled_a_bounded_number_of_times(
    aws: StubbedAws, previous: dict[str, Any], left: int
) -> None:
    _latest(aws, "RollbackInProgress", reason="Rollback requested", version=VERSION)

    result = _poll(aws, _rolled_back("rollback", **previous))

    assert (result["back"], result["polls_left"]) == (False, left)
    assert result["summary"] == (
        f"the rollback's instance refresh {ROLLBACK_ID} is still RollbackInProgress "
        f"after {3 - left} polls"
    )


@pytest.mark.parametrize(
    "other",
    [
        {"status": "InProgress", "refresh_id": "r-0200"},
        {"status": "Successful", "refresh_id": "r-0200", "version": 9},
        {"status": None},
    ],
    ids=["someone-elses-running", "someone-elses-finished", "none-at-all"],
)
def test_another_refresh_of_the_group_is_not_taken_for_the_rollbacks(
    aws: StubbedAws, other: dict[str, Any]
) -> None:
    # Given the group's latest refresh is not the one Rollback started (someone else's)
    _latest(aws, **other)

    # When the rollback's refresh is polled
    result = _poll(aws, _rolled_back("refresh"))

    # Then no status of that refresh counts: the fleet is not back, no poll is left, and
    # the ledger will say whose refresh was found
    assert (result["status"], result["back"], result["polls_left"]) == (
        "NotThisRelease",
        False,
        0,
    )
    found = "no refresh" if other["status"] is None else f"r-0200 ({other['status']})"
    assert result["summary"] == (
        f"the latest instance refresh of {GROUPS['blue']} is {found}, not the rollback's "
        f"{ROLLBACK_ID}: someone else's refresh may be changing the fleet"
    )


def test_a_poll_without_a_rollback_refresh_is_refused_before_any_call(aws: StubbedAws) -> None:
    state = _rolled_back("nothing")
    state["rollback"] = {"wait": False, "action": "nothing", "reason": REASON}
    with pytest.raises(MalformedStepError, match="no rollback refresh to poll"):
        _poll(aws, state)
    assert aws.calls == []


# --- the forward refresh, polled (deploy `poll`) --------------------------------------------


def test_the_forward_poll_reads_this_releases_refresh(aws: StubbedAws) -> None:
    _latest(aws, "InProgress", refresh_id="r-0099", reason="50%", version=VERSION)
    result = deploy(step_input(release_state("rolling"), "poll"), SETTINGS, aws.clients)
    assert result == {"status": "InProgress", "reason": "50%", "polls_left": 2}


@pytest.mark.parametrize(
    ("version", "started"),
    [(5, timedelta(minutes=10)), (VERSION, -timedelta(hours=2))],
    ids=["to-another-version", "started-before-this-release"],
)
def test_the_forward_poll_fails_on_a_refresh_that_is_not_this_releases(
    aws: StubbedAws, version: int, started: timedelta
) -> None:
    # Given the group's latest refresh is someone else's (another version, or older)
    _latest(aws, "Successful", refresh_id="r-0200", version=version, started=started)

    # When the forward refresh is polled, Then the step fails and says whose it found
    # (the state machine records the release failed, and leaves that refresh alone)
    with pytest.raises(ForeignRefreshError) as raised:
        deploy(step_input(release_state("rolling"), "poll"), SETTINGS, aws.clients)
    message = str(raised.value)
    assert f"r-0200 (Successful, to {TEMPLATES['blue']} version {version}" in message
    assert f"is not this release's (to version {VERSION}" in message
    assert aws.calls == ["autoscaling.DescribeInstanceRefreshes"]
