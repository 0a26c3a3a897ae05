"""A person's decision on a held canary step (phoenix/rollback/runtime/approval.py): the
token is taken once, then answered; anything with nothing to decide changes nothing
(Stubber: botocore's models check every call)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY

from phoenix.kernel import attributes
from phoenix.rollback.runtime.handler import handle
from tests.release.release_state import (
    RELEASE_ID,
    TABLE,
    StubbedAws,
    expect_approval_kept,
    fleet_key,
    release_key,
)
from tests.rollback.rollback_world import expect_read, request, settings

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAfL0aGVsZC1zdGVw"  # noqa: S105 (a task token)
HELD = {
    "lock_owner": RELEASE_ID,
    "approval": {
        "token": TOKEN,
        "release": RELEASE_ID,
        "asked_at": "2026-11-25T11:50:00.000000Z",
        "traffic": 25,
        "judgment": "canary judgment marginal (score 83): failed checkouts fail",
        "timeout_minutes": 60,
    },
}


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


def _decision(detail_type: str, **detail: Any) -> dict[str, Any]:
    event = request(detail_type, reason="checkout errors are the known CDN issue")
    event["detail"].update(detail)
    return event


def _expect_taken(aws: StubbedAws, *, taken: bool = True) -> None:
    expected = {
        "TableName": TABLE,
        "Key": fleet_key(),
        "UpdateExpression": "REMOVE approval",
        "ConditionExpression": "approval.#token = :token",
        "ExpressionAttributeNames": {"#token": "token"},
        "ExpressionAttributeValues": {":token": {"S": TOKEN}},
    }
    if taken:
        aws.dynamodb.add_response("update_item", {}, expected)
    else:
        aws.dynamodb.add_client_error(
            "update_item", "ConditionalCheckFailedException", expected_params=expected
        )


def _expect_recorded(aws: StubbedAws, step: str) -> None:
    said = {"by": "alice", "reason": "checkout errors are the known CDN issue"}
    entry = attributes.typed({"step": step, **said})
    entry["M"] = {**entry["M"], "at": ANY}
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": release_key(),
            "UpdateExpression": ANY,
            "ExpressionAttributeValues": {":step": {"L": [entry]}, ":none": {"L": []}, ":at": ANY},
            "ReturnValues": "UPDATED_OLD",
        },
    )


def test_an_approval_moves_the_held_release_on_and_is_recorded(aws: StubbedAws) -> None:
    # Given a fleet whose canary step holds for approval
    expect_read(aws, HELD)
    _expect_taken(aws)
    output = {"decision": "approved", "by": "alice",
              "reason": "checkout errors are the known CDN issue"}  # fmt: skip
    aws.stepfunctions.add_response(
        "send_task_success", {}, {"taskToken": TOKEN, "output": json.dumps(output)}
    )
    _expect_recorded(aws, "canary step approved")

    # When a person approves it
    answer = handle(_decision("Canary Step Approved"), settings(), aws.clients)

    # Then the token is answered once, and who and why recorded on the release
    assert answer["action"] == "approved"
    assert answer["release_id"] == RELEASE_ID


def test_a_rejection_fails_the_held_step_with_who_and_why(aws: StubbedAws) -> None:
    expect_read(aws, HELD)
    _expect_taken(aws)
    aws.stepfunctions.add_response(
        "send_task_failure",
        {},
        {
            "taskToken": TOKEN,
            "error": "CanaryStepRejected",
            "cause": "canary step rejected by alice: checkout errors are the known CDN issue",
        },
    )
    _expect_recorded(aws, "canary step rejected")

    answer = handle(
        _decision("Canary Step Rejected", release_id=RELEASE_ID), settings(), aws.clients
    )

    assert answer["action"] == "rejected"


def test_a_duplicate_decision_finds_the_token_taken_and_answers_nothing(aws: StubbedAws) -> None:
    expect_read(aws, HELD)
    _expect_taken(aws, taken=False)

    answer = handle(_decision("Canary Step Approved"), settings(), aws.clients)

    assert answer == {"action": "refused", "reason": f"release {RELEASE_ID} was decided already"}
    assert aws.calls == ["dynamodb.GetItem", "dynamodb.UpdateItem"]


@pytest.mark.parametrize(
    ("item", "detail", "reason"),
    [
        ({"lock_owner": RELEASE_ID}, {}, "fleet web has no canary step awaiting approval"),
        (
            HELD,
            {"release_id": "web-0ther"},
            f"fleet web awaits approval for release {RELEASE_ID}, not web-0ther",
        ),
    ],
    ids=["nothing held", "another release"],
)
def test_a_decision_with_nothing_to_decide_changes_nothing(
    aws: StubbedAws, item: dict[str, Any], detail: dict[str, str], reason: str
) -> None:
    expect_read(aws, item)

    answer = handle(_decision("Canary Step Approved", **detail), settings(), aws.clients)

    assert answer == {"action": "refused", "reason": reason}
    assert aws.calls == ["dynamodb.GetItem"]


def test_a_release_that_no_longer_waits_is_refused_and_nothing_recorded(aws: StubbedAws) -> None:
    # Given the held release ended meanwhile (an alarm stopped it): its token is unknown
    expect_read(aws, HELD)
    _expect_taken(aws)
    aws.stepfunctions.add_client_error(
        "send_task_success", "TaskTimedOut", "Task Timed Out: 'Provided task does not exist'"
    )

    answer = handle(_decision("Canary Step Approved"), settings(), aws.clients)

    assert answer == {
        "action": "refused",
        "reason": f"release {RELEASE_ID} no longer awaits approval (TaskTimedOut)",
    }


@pytest.mark.parametrize(
    "detail",
    [
        {"fleet": "web", "requested_by": "alice"},
        {"fleet": "web", "requested_by": "alice", "reason": "ok", "extra": 1},
        {"fleet": "web", "requested_by": "alice", "reason": "ok", "release_id": "../x"},
    ],
    ids=["no reason", "unknown field", "bad release id"],
)
def test_a_malformed_decision_is_refused_before_any_call(
    aws: StubbedAws, detail: dict[str, Any]
) -> None:
    event = _decision("Canary Step Rejected")
    event["detail"] = detail

    answer = handle(event, settings(), aws.clients)

    assert answer["action"] == "refused"
    assert aws.calls == []


def test_an_answer_step_functions_did_not_take_gives_the_token_back(aws: StubbedAws) -> None:
    # Given a held step, and Step Functions throttling the answer past botocore's retries
    expect_read(aws, HELD)
    _expect_taken(aws)
    aws.stepfunctions.add_client_error("send_task_success", "ThrottlingException", "Rate exceeded")
    # the token goes back on the fleet item, as it was read, while the release holds the lock
    as_read = attributes.plain(attributes.typed(HELD["approval"])["M"])
    expect_approval_kept(aws, attributes.typed(as_read))

    # When a person approves it, the invocation fails (Lambda retries the event)
    with pytest.raises(ClientError, match="ThrottlingException"):
        handle(_decision("Canary Step Approved"), settings(), aws.clients)

    # Then nothing was recorded as decided
    assert aws.calls == [
        "dynamodb.GetItem",
        "dynamodb.UpdateItem",
        "stepfunctions.SendTaskSuccess",
        "dynamodb.UpdateItem",
    ]
