"""The preflight handler: the lock, the release item and the events around the checks
(Stubber; the checks themselves: test_preflight.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY

from phoenix.kernel import attributes, ledger
from phoenix.release.handlers.preflight import handle
from phoenix.release.runtime.preflight import PreflightFailedError
from tests.release.preflight_world import World, given, image
from tests.release.release_state import (
    AMI,
    PREVIOUS_AMI,
    RELEASE_ID,
    SETTINGS,
    TABLE,
    IsoAfter,
    StubbedAws,
    conditional_check_failed,
    expect_event,
    expect_step,
    fleet_key,
    release_key,
    release_state,
    step_input,
)

PAST = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
FUTURE = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


# --- the handler: lock, ledger, events --------------------------------------------------


def _expect_lock(aws: StubbedAws) -> None:
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
                ":expires": IsoAfter(ledger.LOCK_HOLD),
                ":now": IsoAfter(timedelta(0)),
                ":false": {"BOOL": False},
            },
        },
    )


def _expect_open(aws: StubbedAws, strategy: str) -> None:
    state = release_state(strategy)
    aws.dynamodb.add_response(
        "put_item",
        {},
        {
            "TableName": TABLE,
            "Item": {
                **release_key(),
                "trigger": {"S": "image-available"},
                "event_id": {"S": state["event_id"]},
                "image": {"S": state["image"]},
                "to_ami": {"S": AMI},
                "strategy": {"S": strategy},
                "release_id": {"S": RELEASE_ID},
                "fleet": {"S": "web"},
                "started_at": ANY,
                "last_step_at": ANY,
                "steps": {"L": []},
                "outcome": {"S": "in progress"},
            },
        },
    )
    expect_event(aws, "Release Started", trigger="image-available", strategy=strategy)


def _expect_scan(aws: StubbedAws) -> None:
    """The image's scan, read before the checks: completed, nothing found
    (phoenix/release/runtime/scan_gate.py; its cases: test_scan_gate.py)."""
    image = release_state()["image"]
    aws.stub("imagebuilder").add_response(
        "get_image",
        {"requestId": "r", "image": {"arn": image, "scanState": {"status": "COMPLETED"}}},
        {"imageBuildVersionArn": image},
    )
    aws.stub("imagebuilder").add_response(
        "list_image_scan_findings",
        {"requestId": "r", "findings": []},
        {"filters": [{"name": "imageBuildVersionArn", "values": [image]}]},
    )


def _expect_flight(aws: StubbedAws, strategy: str, target: str) -> None:
    """What the alarm-driven rollback needs of the release, on the fleet item, under the lock."""
    flight = {
        "release": RELEASE_ID,
        "strategy": strategy,
        "active_slot": "blue",
        "target_slot": target,
        "from_ami": PREVIOUS_AMI,
        "to_ami": AMI,
        "rollback": False,
    }
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": "SET flight = :flight",
            "ConditionExpression": "lock_owner = :release",
            "ExpressionAttributeValues": {
                ":flight": attributes.typed(flight),
                ":release": {"S": RELEASE_ID},
            },
        },
    )


@pytest.mark.parametrize("strategy", ["canary", "rolling"])
def test_preflight_locks_opens_the_release_and_returns_the_plan(
    aws: StubbedAws, strategy: str
) -> None:
    # Given a fleet safe to release to
    _expect_lock(aws)
    _expect_open(aws, strategy)
    _expect_scan(aws)
    given(aws, strategy, World())
    target = "blue" if strategy == "rolling" else "green"
    _expect_flight(aws, strategy, target)
    expect_step(
        aws, "preflight passed", from_ami=PREVIOUS_AMI, active_slot="blue", target_slot=target
    )

    # When the preflight step runs
    event = step_input(release_state(strategy, planned=False, prepared=False))
    plan = handle(event, SETTINGS, aws.clients)

    # Then the lock comes first, and the plan is returned as JSON for the state machine
    assert aws.calls[:3] == ["dynamodb.UpdateItem", "dynamodb.PutItem", "events.PutEvents"]
    assert plan["target_slot"] == target
    assert plan["from_ami"] == PREVIOUS_AMI
    last = plan["steps"][-1]
    assert (last["target"], last["active"], last["last"]) == (100, 0, True)
    assert plan["target_running"] == 0


LOCKED: dict[str, tuple[dict[str, Any], str]] = {
    "locked": (
        {"lock_owner": {"S": "web-earlier"}, "lock_expires": {"S": "2026-11-25T12:00:00Z"}},
        "fleet web is locked by release web-earlier until 2026-11-25T12:00:00Z",
    ),
    "paused": (
        {"paused": {"BOOL": True}, "paused_reason": {"S": "incident 42"}},
        "fleet web is paused (incident 42)",
    ),
}


@pytest.mark.parametrize("case", LOCKED, ids=list(LOCKED))
def test_a_refused_lock_changes_nothing_else(aws: StubbedAws, case: str) -> None:
    # Given a fleet another release holds (or paused): the write is refused
    attributes, message = LOCKED[case]
    conditional_check_failed(aws.dynamodb)
    aws.dynamodb.add_response(
        "get_item",
        {"Item": fleet_key() | attributes},
        {"TableName": TABLE, "Key": fleet_key(), "ConsistentRead": True},
    )

    # When preflight runs, Then it is refused saying why, having only read the fleet item
    event = step_input(release_state("canary", planned=False, prepared=False))
    with pytest.raises(ledger.LockRefusedError, match=f"^{re.escape(message)}$"):
        handle(event, SETTINGS, aws.clients)
    assert aws.calls == ["dynamodb.UpdateItem", "dynamodb.GetItem"]


def test_a_ledger_error_other_than_the_condition_is_raised_as_it_is(aws: StubbedAws) -> None:
    aws.dynamodb.add_client_error(
        "update_item", service_error_code="ProvisionedThroughputExceededException"
    )
    event = step_input(release_state("canary", planned=False, prepared=False))
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        handle(event, SETTINGS, aws.clients)
    assert aws.calls == ["dynamodb.UpdateItem"]


def test_a_failed_check_after_the_lock_records_no_step(aws: StubbedAws) -> None:
    # Given a locked, opened release whose target AMI is gone
    _expect_lock(aws)
    _expect_open(aws, "canary")
    _expect_scan(aws)
    given(aws, "canary", World(images=(image(PREVIOUS_AMI),)), through="images")

    # Then the check's error reaches the state machine; no "preflight passed" step
    event = step_input(release_state("canary", planned=False, prepared=False))
    with pytest.raises(PreflightFailedError, match="target AMI exists"):
        handle(event, SETTINGS, aws.clients)
    assert aws.calls[-1] == "ec2.DescribeImages"
