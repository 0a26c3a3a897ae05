"""phoenix's example pre-traffic hook (phoenix/hooks/runtime/smoke_test.py), with
botocore's Stubber for Systems Manager: the command each instance runs (in commands of at
most 50 instances), and the answer from the invocations' results, a page at a time."""

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
FIRST, SECOND = "5d0c1f5e-0000-4000-8000-000000000002", "5d0c1f5e-0000-4000-8000-000000000003"
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


def _sent(ssm: Stubber, instances: list[str] | None = None, command: str = COMMAND_ID) -> None:
    ssm.add_response(
        "send_command",
        {"Command": {"CommandId": command}},
        {
            "InstanceIds": instances or ["i-1", "i-2"],
            "DocumentName": "AWS-RunShellScript",
            "Parameters": {"commands": [COMMAND]},
            "TimeoutSeconds": 60,
            "Comment": "phoenix smoke test of release web-1",
        },
    )


def _invocation(instance: str, status: str, code: int = 0, output: str = "") -> dict[str, Any]:
    plugin = {"Name": "aws:runShellScript", "Status": status, "ResponseCode": code}
    return {
        "CommandId": COMMAND_ID,
        "InstanceId": instance,
        "Status": status,
        "CommandPlugins": [plugin | {"Output": output}],
    }


def _listed(
    ssm: Stubber, *invocations: dict[str, Any], command: str = COMMAND_ID, next_page: str = ""
) -> None:
    """One page of ListCommandInvocations (`next_page`: the next page's token)."""
    ssm.add_response(
        "list_command_invocations",
        {"CommandInvocations": list(invocations)} | ({"NextToken": next_page} if next_page else {}),
        {"CommandId": command, "Details": True},
    )


def test_every_instance_answering_passes(ssm: Stubber) -> None:
    _sent(ssm)
    _listed(ssm, _invocation("i-1", "Success"), _invocation("i-2", "Success"))

    answer = smoke_test(_client(ssm), EVENT, 60)

    assert answer == {"passed": True, "reason": "2 instances answered 3 requests"}


def test_one_instance_answering_an_error_fails_naming_it(ssm: Stubber) -> None:
    _sent(ssm)
    error = "curl: (22) The requested URL returned error: 500"
    _listed(ssm, _invocation("i-1", "Success"), _invocation("i-2", "Failed", 22, error))

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
    _listed(ssm, _invocation("i-1", "InProgress"), _invocation("i-2", "Success"))
    _listed(ssm, _invocation("i-1", "Success"), _invocation("i-2", "Success"))

    assert smoke_test(_client(ssm), EVENT, 60)["passed"] is True


def test_a_fleet_of_more_than_50_is_sent_in_commands_of_50_and_read_a_page_at_a_time(
    ssm: Stubber,
) -> None:
    # SendCommand takes at most 50 instance IDs (API reference, InstanceIds)
    instances = [f"i-{n:03}" for n in range(60)]
    event = EVENT | {"targets": [{"id": i, "port": 8080} for i in instances]}
    _sent(ssm, instances[:50], command=FIRST)
    _sent(ssm, instances[50:], command=SECOND)
    done = [_invocation(i, "Success") for i in instances]
    _listed(ssm, *done[:30], command=FIRST, next_page="30")
    ssm.add_response(
        "list_command_invocations",
        {"CommandInvocations": done[30:50]},
        {"CommandId": FIRST, "Details": True, "NextToken": "30"},
    )
    _listed(ssm, *done[50:], command=SECOND)

    assert smoke_test(_client(ssm), event, 60) == {
        "passed": True,
        "reason": "60 instances answered 3 requests",
    }


@pytest.mark.parametrize(
    "path", ["/x; rm -rf /", "/$(id)", "relative", "/a b", "/`id`", "/a|b", "/a&&b"]
)
def test_a_path_a_shell_would_read_is_refused_before_any_command(ssm: Stubber, path: str) -> None:
    answer = smoke_test(_client(ssm), EVENT | {"input": {"path": path}}, 60)
    assert answer["passed"] is False
    assert answer["reason"].startswith("bad input: path")


def test_the_command_requests_the_application_on_the_target_s_port() -> None:
    assert command_for(8080, "/checkout", 3) == COMMAND
