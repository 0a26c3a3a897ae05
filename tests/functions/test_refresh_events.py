"""The instance refresh event receiver: the end of a refresh resumes the release waiting
on its group, once (Stubber)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.common.events import REFRESH_ENDED
from functions.refresh_events.handler import Settings, handle
from tests.functions.release_state import (
    GROUPS,
    TABLE,
    TOKEN,
    StubbedAws,
    conditional_check_failed,
    fleet_key,
)

SETTINGS = Settings(
    environment="sandbox",
    service_name="t",
    table_name=TABLE,
    groups=json.dumps({GROUPS["blue"]: "web", GROUPS["green"]: "web"}),
)
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


def _take(aws: StubbedAws, group: str = GROUPS["blue"], token: str | None = TOKEN) -> None:
    """The conditional removal of the token waiting on `group` (refused: nobody waits)."""
    if token is None:
        conditional_check_failed(aws.dynamodb)
        return
    aws.dynamodb.add_response(
        "update_item",
        {"Attributes": {"waiting_token": {"S": token}, "waiting_group": {"S": group}}},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": "REMOVE waiting_token, waiting_group",
            "ConditionExpression": "waiting_group = :group AND attribute_exists(waiting_token)",
            "ExpressionAttributeValues": {":group": {"S": group}},
            "ReturnValues": "UPDATED_OLD",
        },
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
    _take(aws)
    _expect_success(aws, kind, ENDS[kind])

    # When the refresh's end event arrives
    result = handle(_event(kind), SETTINGS, aws.clients)

    # Then the token is taken, then the task completed with the refresh's status
    assert result == {"completed": True, "reason": ENDS[kind]}
    assert aws.calls == ["dynamodb.UpdateItem", "stepfunctions.SendTaskSuccess"]


def test_the_statuses_are_those_the_state_machine_and_describe_use() -> None:
    assert ENDS == {
        "Succeeded": "Successful",
        "Failed": "Failed",
        "Cancelled": "Cancelled",
        "Rollback Succeeded": "RollbackSuccessful",
        "Rollback Failed": "RollbackFailed",
    }


def test_the_other_slots_group_takes_its_own_token(aws: StubbedAws) -> None:
    _take(aws, GROUPS["green"])
    _expect_success(aws, "Succeeded", "Successful")
    assert handle(_event(group=GROUPS["green"]), SETTINGS, aws.clients)["completed"] is True


def test_a_duplicate_event_completes_nothing(aws: StubbedAws) -> None:
    # Given the event delivered twice: the first takes the token, the second finds none
    _take(aws)
    _expect_success(aws, "Succeeded", "Successful")
    _take(aws, token=None)

    first = handle(_event(), SETTINGS, aws.clients)
    second = handle(_event(), SETTINGS, aws.clients)

    assert first["completed"] is True
    assert second == {"completed": False, "reason": "no release waits"}
    assert aws.calls.count("stepfunctions.SendTaskSuccess") == 1


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
    _take(aws)
    aws.stepfunctions.add_client_error("send_task_success", service_error_code=code)

    result = handle(_event(), SETTINGS, aws.clients)

    assert result == {"completed": False, "reason": code}


def test_any_other_step_functions_error_is_raised(aws: StubbedAws) -> None:
    _take(aws)
    aws.stepfunctions.add_client_error(
        "send_task_success", service_error_code="ThrottlingException", http_status_code=400
    )
    with pytest.raises(ClientError, match="ThrottlingException"):
        handle(_event(), SETTINGS, aws.clients)
