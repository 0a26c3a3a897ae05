"""phoenix's example pre-traffic hook (phoenix/hooks/runtime/smoke_test.py), with
botocore's Stubber for Systems Manager: the command each instance runs, and the answer
from the invocations' results."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.stub import Stubber

from phoenix.hooks.runtime.smoke_test import command_for, smoke_test
from tests.release.release_state import StubbedAws

if TYPE_CHECKING:
    from types_boto3_ssm.client import SSMClient

COMMAND_ID = "5d0c1f5e-0000-4000-8000-000000000001"
EVENT = {
    "release": "web-1",
    "targets": [{"id": "i-1", "port": 8080}, {"id": "i-2", "port": 8080}],
    "input": {"path": "/checkout", "requests": "3"},
}
COMMAND = (
    "for i in $(seq 3); do curl -fsS -o /dev/null --max-time 5 "
    "http://localhost:8080/checkout || exit 1; done"
)


@pytest.fixture
def ssm() -> Iterator[Stubber]:
    stubbed = StubbedAws()
    yield stubbed.ssm
    stubbed.verify()


def _client(ssm: Stubber) -> SSMClient:
    return cast("SSMClient", ssm.client)


def _sent(ssm: Stubber) -> None:
    ssm.add_response(
        "send_command",
        {"Command": {"CommandId": COMMAND_ID}},
        {
            "InstanceIds": ["i-1", "i-2"],
            "DocumentName": "AWS-RunShellScript",
            "Parameters": {"commands": [COMMAND]},
            "TimeoutSeconds": 60,
            "Comment": "phoenix smoke test of release web-1",
        },
    )


def _result(ssm: Stubber, instance: str, status: str, **more: Any) -> None:
    ssm.add_response(
        "get_command_invocation",
        {"CommandId": COMMAND_ID, "InstanceId": instance, "Status": status, **more},
        {"CommandId": COMMAND_ID, "InstanceId": instance},
    )


def test_every_instance_answering_passes(ssm: Stubber) -> None:
    _sent(ssm)
    _result(ssm, "i-1", "Success", ResponseCode=0)
    _result(ssm, "i-2", "Success", ResponseCode=0)

    answer = smoke_test(_client(ssm), EVENT, 60)

    assert answer == {"passed": True, "reason": "2 instances answered 3 requests"}


def test_one_instance_answering_an_error_fails_naming_it(ssm: Stubber) -> None:
    _sent(ssm)
    _result(ssm, "i-1", "Success", ResponseCode=0)
    error = "curl: (22) The requested URL returned error: 500"
    _result(ssm, "i-2", "Failed", ResponseCode=22, StandardErrorContent=error)

    answer = smoke_test(_client(ssm), EVENT, 60)

    assert answer == {
        "passed": False,
        "reason": f"1 of 2 failed: i-2: Failed (exit 22) {error}",
    }


def test_an_instance_still_running_is_asked_again(
    ssm: Stubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("phoenix.hooks.runtime.smoke_test.time.sleep", lambda _: None)
    _sent(ssm)
    _result(ssm, "i-1", "InProgress")
    _result(ssm, "i-2", "Success", ResponseCode=0)
    _result(ssm, "i-1", "Success", ResponseCode=0)

    assert smoke_test(_client(ssm), EVENT, 60)["passed"] is True


@pytest.mark.parametrize(
    "path", ["/x; rm -rf /", "/$(id)", "relative", "/a b", "/`id`", "/a|b", "/a&&b"]
)
def test_a_path_a_shell_would_read_is_refused_before_any_command(ssm: Stubber, path: str) -> None:
    answer = smoke_test(_client(ssm), EVENT | {"input": {"path": path}}, 60)
    assert answer["passed"] is False
    assert answer["reason"].startswith("bad input: path")


def test_the_command_requests_the_application_on_the_target_s_port() -> None:
    assert command_for(8080, "/checkout", 3) == COMMAND
