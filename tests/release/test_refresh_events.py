"""The instance refresh event receiver: the end of a refresh resumes the release waiting
on its group, once; the token is forgotten only once sent (Stubber)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from phoenix.kernel import attributes
from phoenix.release.handlers.refresh_events import handle
from phoenix.release.runtime.events import REFRESH_ENDED
from phoenix.release.runtime.settings import RefreshEventSettings as Settings
from tests.release.release_state import (
    GROUPS,
    RELEASE_ID,
    TABLE,
    TOKEN,
    StubbedAws,
    fleet_key,
)

SETTINGS = Settings(environment="sandbox", service_name="t", table_name=TABLE)
REFRESH_ID = "ab00cf8f-9126-4f3c-8010-dbb8cad6fb86"


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


def _event(kind: str = "Succeeded", group: str = GROUPS["blue"]) -> dict[str, Any]:
    """`EC2 Auto Scaling Instance Refresh <kind>` as EventBridge delivers it."""
    return {
        "version": "0",
        "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": f"EC2 Auto Scaling Instance Refresh {kind}",
        "source": "aws.autoscaling",
        "account": "123456789012",
        "time": "2026-11-25T09:30:00Z",
        "region": "us-east-1",
        "resources": [
            "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:042cba90-ad2f-431c"
            f"-9b4d-6d9055bcc9fb:autoScalingGroupName/{group}"
        ],
        "detail": {"InstanceRefreshId": REFRESH_ID, "AutoScalingGroupName": group},
    }


def _waiting(aws: StubbedAws, group: str = GROUPS["blue"], token: str | None = TOKEN) -> None:
    """The fleet item read (consistently): the token waiting on `group` (None: no token)."""
    item: dict[str, Any] = fleet_key() | {"lock_owner": {"S": RELEASE_ID}}
    if token is not None:
        item |= {"waiting_token": {"S": token}, "waiting_group": {"S": group}}
    aws.dynamodb.add_response(
        "get_item",
        {"Item": item},
        {"TableName": TABLE, "Key": fleet_key(), "ConsistentRead": True},
    )


CLEAR = {
    "TableName": TABLE,
    "Key": fleet_key(),
    "UpdateExpression": "REMOVE waiting_token, waiting_group",
    "ConditionExpression": "waiting_token = :token",
    "ExpressionAttributeValues": {":token": {"S": TOKEN}},
}


def _expect_cleared(aws: StubbedAws, refused: str | None = None) -> None:
    """The token forgotten, on condition it is still the one sent (`refused`: the error)."""
    if refused is None:
        aws.dynamodb.add_response("update_item", {}, CLEAR)
        return
    aws.dynamodb.add_client_error(
        "update_item", service_error_code=refused, http_status_code=400, expected_params=CLEAR
    )


def _expect_success(aws: StubbedAws, kind: str, status: str) -> None:
    reason = f"EC2 Auto Scaling Instance Refresh {kind} ({REFRESH_ID})"
    aws.stepfunctions.add_response(
        "send_task_success",
        {},
        {"taskToken": TOKEN, "output": json.dumps({"status": status, "reason": reason})},
    )


ENDS = {
    detail_type.removeprefix("EC2 Auto Scaling Instance Refresh "): s
    for detail_type, s in REFRESH_ENDED.items()
}


@pytest.mark.parametrize("kind", ENDS, ids=list(ENDS))
def test_the_end_of_a_refresh_resumes_the_waiting_release(aws: StubbedAws, kind: str) -> None:
    # Given a release waiting on the blue group with a task token
    _waiting(aws)
    _expect_success(aws, kind, ENDS[kind])
    _expect_cleared(aws)

    # When the refresh's end event arrives
    result = handle(_event(kind), SETTINGS, aws.clients)

    # Then the token is read, the task completed with the refresh's status, and only
    # then the token forgotten
    assert result == {"completed": True, "reason": ENDS[kind]}
    assert aws.calls == [
        "dynamodb.GetItem",
        "stepfunctions.SendTaskSuccess",
        "dynamodb.UpdateItem",
    ]


def test_the_statuses_are_those_the_state_machine_and_describe_use() -> None:
    assert ENDS == {
        "Succeeded": "Successful",
        "Failed": "Failed",
        "Cancelled": "Cancelled",
        "Rollback Succeeded": "RollbackSuccessful",
        "Rollback Failed": "RollbackFailed",
    }


def test_the_other_slots_group_sends_its_own_token(aws: StubbedAws) -> None:
    _waiting(aws, GROUPS["green"])
    _expect_success(aws, "Succeeded", "Successful")
    _expect_cleared(aws)
    assert handle(_event(group=GROUPS["green"]), SETTINGS, aws.clients)["completed"] is True


def test_a_token_waiting_on_another_group_is_neither_sent_nor_cleared(aws: StubbedAws) -> None:
    # Given the release waits on green; blue's refresh ends (an earlier refresh, say)
    _waiting(aws, GROUPS["green"])
    result = handle(_event(group=GROUPS["blue"]), SETTINGS, aws.clients)
    assert result == {"completed": False, "reason": "no release waits"}
    assert aws.calls == ["dynamodb.GetItem"]


NOBODY_WAITS: dict[str, dict[str, Any]] = {
    "no fleet item": {},
    "no token": {"Item": fleet_key()},
    "a NULL token": {
        "Item": fleet_key()
        | {"waiting_token": {"NULL": True}, "waiting_group": {"S": GROUPS["blue"]}}
    },
}


@pytest.mark.parametrize("case", NOBODY_WAITS, ids=list(NOBODY_WAITS))
def test_without_a_waiting_token_nothing_is_sent(aws: StubbedAws, case: str) -> None:
    aws.dynamodb.add_response(
        "get_item",
        NOBODY_WAITS[case],
        {"TableName": TABLE, "Key": fleet_key(), "ConsistentRead": True},
    )
    result = handle(_event(), SETTINGS, aws.clients)
    assert result == {"completed": False, "reason": "no release waits"}
    assert aws.calls == ["dynamodb.GetItem"]


def test_a_dynamodb_null_reads_as_none() -> None:
    typed: dict[str, Any] = {
        "a": {"NULL": True},
        "b": {"L": [{"NULL": True}, {"M": {"c": {"NULL": True}}}]},
    }
    assert attributes.plain(typed) == {"a": None, "b": [None, {"c": None}]}
    assert attributes.plain({"a": attributes.typed(None)}) == {"a": None}


def test_a_duplicate_event_after_the_first_finds_no_token(aws: StubbedAws) -> None:
    # Given the event delivered twice: the first sends and clears the token
    _waiting(aws)
    _expect_success(aws, "Succeeded", "Successful")
    _expect_cleared(aws)
    _waiting(aws, token=None)

    first = handle(_event(), SETTINGS, aws.clients)
    second = handle(_event(), SETTINGS, aws.clients)

    assert first["completed"] is True
    assert second == {"completed": False, "reason": "no release waits"}
    assert aws.calls.count("stepfunctions.SendTaskSuccess") == 1


def test_a_duplicate_event_that_read_the_token_too_finds_the_task_ended(
    aws: StubbedAws,
) -> None:
    # Given both deliveries read the token before either cleared it
    _waiting(aws)
    _expect_success(aws, "Succeeded", "Successful")
    _expect_cleared(aws)
    _waiting(aws)
    aws.stepfunctions.add_client_error("send_task_success", service_error_code="TaskTimedOut")
    _expect_cleared(aws, refused="ConditionalCheckFailedException")

    first = handle(_event(), SETTINGS, aws.clients)
    second = handle(_event(), SETTINGS, aws.clients)

    # Then Step Functions refuses the second (the task has ended): nothing completed twice,
    # and the token the first already cleared is not an error
    assert first == {"completed": True, "reason": "Successful"}
    assert second == {"completed": False, "reason": "TaskTimedOut"}


def test_a_token_replaced_by_a_newer_wait_is_kept(aws: StubbedAws) -> None:
    # Given the release stored a new token (a poll, then `await`) after the read
    _waiting(aws)
    _expect_success(aws, "Succeeded", "Successful")
    _expect_cleared(aws, refused="ConditionalCheckFailedException")

    # Then the conditional clear is refused (the newer token stays) and that is no error
    assert handle(_event(), SETTINGS, aws.clients) == {"completed": True, "reason": "Successful"}


@pytest.mark.parametrize("kind", ["Started", "Checkpoint Reached", "Rollback Started"])
def test_events_that_do_not_end_a_refresh_are_ignored_without_a_call(
    aws: StubbedAws, kind: str
) -> None:
    result = handle(_event(kind), SETTINGS, aws.clients)
    assert result == {"completed": False, "reason": "not the end of a refresh"}
    assert aws.calls == []


def test_a_group_of_no_fleet_is_ignored_without_a_call(aws: StubbedAws) -> None:
    result = handle(_event(group="someone-elses-group"), SETTINGS, aws.clients)
    assert result == {"completed": False, "reason": "group someone-elses-group is no fleet's"}
    assert aws.calls == []


def _without(key: str) -> dict[str, Any]:
    event = _event()
    del event["detail"][key]
    return event


MALFORMED: dict[str, Any] = {
    "no group": _without("AutoScalingGroupName"),
    "no refresh id": _without("InstanceRefreshId"),
    "another source": _event() | {"source": "aws.ec2"},
    "another detail type": _event() | {"detail-type": "EC2 Instance State-change Notification"},
    "no detail": {k: v for k, v in _event().items() if k != "detail"},
    "not an event": ["EC2 Auto Scaling Instance Refresh Succeeded"],
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_event_is_refused_without_a_call(aws: StubbedAws, case: str) -> None:
    result = handle(MALFORMED[case], SETTINGS, aws.clients)
    assert result["completed"] is False
    assert result["reason"].startswith("not an instance refresh event")
    assert aws.calls == []


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_a_wait_that_already_ended_is_not_an_error(aws: StubbedAws, code: str) -> None:
    # Given the release's wait timed out (it went on polling) before the event came
    _waiting(aws)
    aws.stepfunctions.add_client_error("send_task_success", service_error_code=code)
    _expect_cleared(aws)

    result = handle(_event(), SETTINGS, aws.clients)

    # Then the token, which nothing can complete any more, is forgotten
    assert result == {"completed": False, "reason": code}
    assert aws.calls[-1] == "dynamodb.UpdateItem"


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ServiceUnavailable", "KMSThrottlingException"]
)
def test_a_failed_send_is_raised_and_leaves_the_token(aws: StubbedAws, code: str) -> None:
    # Given Step Functions fails the send for another reason
    _waiting(aws)
    aws.stepfunctions.add_client_error(
        "send_task_success", service_error_code=code, http_status_code=400
    )

    # Then the error is raised (the event is delivered again) and the token not cleared
    with pytest.raises(ClientError, match=code):
        handle(_event(), SETTINGS, aws.clients)
    assert aws.calls == ["dynamodb.GetItem", "stepfunctions.SendTaskSuccess"]


def test_the_redelivery_of_a_failed_send_resumes_the_release(aws: StubbedAws) -> None:
    _waiting(aws)
    aws.stepfunctions.add_client_error(
        "send_task_success", service_error_code="ServiceUnavailable", http_status_code=503
    )
    _waiting(aws)
    _expect_success(aws, "Succeeded", "Successful")
    _expect_cleared(aws)

    with pytest.raises(ClientError, match="ServiceUnavailable"):
        handle(_event(), SETTINGS, aws.clients)
    assert handle(_event(), SETTINGS, aws.clients) == {"completed": True, "reason": "Successful"}
    assert aws.calls.count("dynamodb.UpdateItem") == 1


def test_a_ledger_error_clearing_the_sent_token_is_raised(aws: StubbedAws) -> None:
    _waiting(aws)
    _expect_success(aws, "Succeeded", "Successful")
    _expect_cleared(aws, refused="ProvisionedThroughputExceededException")
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        handle(_event(), SETTINGS, aws.clients)
