"""Pre-traffic tests (phoenix/release/handlers/pretraffic.py): the fleet's hook, invoked
against the new slot's healthy targets before any traffic; its answer, its failure or
its silence decides, and the step records which."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import ANY

from phoenix.release.handlers.pretraffic import handle
from phoenix.release.runtime.models import PreTrafficHookSpec
from phoenix.release.runtime.pretraffic import PreTrafficFailedError, run_hook
from tests.release.release_state import (
    AMI,
    RELEASE_ID,
    SETTINGS,
    TARGET_GROUPS,
    StubbedAws,
    expect_step,
    release_state,
    step_input,
)
from tests.release.test_release_gate import _targets

HOOK = {"function": "phoenix-sandbox-smoke-test", "timeout_seconds": 120, "input": {"path": "/"}}
HEALTHY = ["i-healthy0", "i-healthy1", "i-healthy2"]


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


def _hooked(**more: Any) -> dict[str, Any]:
    state = release_state(**more)
    state["fleet_spec"]["pre_traffic_hook"] = HOOK
    return state


def _answer(body: Any, *, error: str | None = None) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    answer: dict[str, Any] = {
        "StatusCode": 200,
        "Payload": StreamingBody(io.BytesIO(raw), len(raw)),
    }
    if error:
        answer["FunctionError"] = error
    return answer


def _invoked(aws: StubbedAws, answer: dict[str, Any]) -> None:
    event = {
        "release": RELEASE_ID,
        "environment": "sandbox",
        "fleet": "web",
        "ami": AMI,
        "target_group": TARGET_GROUPS["green"],
        "targets": [{"id": i, "port": None} for i in HEALTHY],
        "instances": HEALTHY,
        "input": {"path": "/"},
    }
    aws.stub("lambda").add_response(
        "invoke",
        answer,
        {
            "FunctionName": HOOK["function"],
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(event).encode(),
        },
    )


def test_a_passing_hook_lets_the_release_go_on_and_is_recorded(aws: StubbedAws) -> None:
    _targets(aws, healthy=3)
    _invoked(aws, _answer({"passed": True, "reason": "3 instances answered 10 requests"}))
    expect_step(
        aws,
        "pre-traffic tests passed",
        hook=HOOK["function"],
        instances=HEALTHY,
        detail="3 instances answered 10 requests",
    )

    result = handle(step_input(_hooked()), SETTINGS, aws.clients)

    assert result == {"passed": True, "skipped": False}


FAILURES: dict[str, tuple[dict[str, Any], str]] = {
    "failed the instances": (
        _answer({"passed": False, "reason": "1 of 3 failed: i-healthy1: exit 22"}),
        "pre-traffic hook phoenix-sandbox-smoke-test failed the new instances: 1 of 3 failed",
    ),
    "raised": (
        _answer({"errorType": "KeyError", "errorMessage": "'targets'"}, error="Unhandled"),
        "pre-traffic hook phoenix-sandbox-smoke-test failed: KeyError: 'targets'",
    ),
    "answered something else": (
        _answer(["ok"]),
        'pre-traffic hook phoenix-sandbox-smoke-test answered ["ok"], not {"passed": true|false}',
    ),
}


@pytest.mark.parametrize("case", FAILURES, ids=list(FAILURES))
def test_a_hook_that_does_not_pass_fails_the_release_before_any_traffic(
    aws: StubbedAws, case: str
) -> None:
    answer, reason = FAILURES[case]
    _targets(aws, healthy=3)
    _invoked(aws, answer)
    expect_step(aws, "pre-traffic tests failed", hook=HOOK["function"], instances=ANY, detail=ANY)

    with pytest.raises(PreTrafficFailedError) as raised:
        handle(step_input(_hooked()), SETTINGS, aws.clients)

    assert str(raised.value).startswith(reason), str(raised.value)
    assert "elasticloadbalancing.ModifyListener" not in aws.calls


def test_a_hook_that_does_not_answer_in_time_fails_without_a_second_invocation() -> None:
    class Silent:
        invoked = 0

        def invoke(self, **_: Any) -> dict[str, Any]:
            self.invoked += 1
            raise ReadTimeoutError(endpoint_url="https://lambda.us-east-1.amazonaws.com")

    silent = Silent()
    hook = PreTrafficHookSpec.model_validate(HOOK)
    with pytest.raises(PreTrafficFailedError, match=r"did not answer within 120 s$"):
        run_hook(silent, hook, {})  # type: ignore[arg-type]
    assert silent.invoked == 1


def test_no_healthy_target_on_the_new_ami_fails_without_invoking_the_hook(
    aws: StubbedAws,
) -> None:
    _targets(aws, healthy=2, older=2)
    expect_step(aws, "pre-traffic tests failed", hook=HOOK["function"], instances=ANY, detail=ANY)

    with pytest.raises(PreTrafficFailedError, match="no healthy target on the new AMI"):
        handle(step_input(_hooked()), SETTINGS, aws.clients)

    assert not [c for c in aws.calls if c.startswith("lambda.")]


def test_a_rollback_release_skips_the_hook(aws: StubbedAws) -> None:
    state = _hooked(trigger="rollback: alarm phoenix-sandbox-web-5xx")
    assert handle(step_input(state), SETTINGS, aws.clients) == {"passed": True, "skipped": True}
    assert aws.calls == []
