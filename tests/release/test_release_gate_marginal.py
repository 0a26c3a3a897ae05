"""A marginal canary judgment (phoenix/release/handlers/gate.py): baked again while
extensions are left; then failed, or held for a person's decision (the `ask` step keeps
the task token on the fleet item and asks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from botocore.stub import ANY

from phoenix.kernel import attributes
from phoenix.release.handlers.gate import handle
from phoenix.release.runtime.gate import GateFailedError
from phoenix.release.runtime.models import MalformedStepError
from tests.release.release_state import (
    AMI,
    RELEASE_ID,
    SETTINGS,
    StubbedAws,
    expect_approval_kept,
    expect_event,
    expect_step,
    release_state,
    step_input,
)
from tests.release.test_release_gate import CANARY, Captured, _alarms, _at_step, _metrics, _targets


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


# --- a marginal judgment -------------------------------------------------------------------

# 5xx weighs 10 and is not critical; its failure alone scores 90: marginal (75 to 95)
MARGINAL = CANARY["5% errors against a tenth of a percent"][0]


def _marginal_state(
    step: dict[str, Any], when_marginal: str = "fail", **more: Any
) -> dict[str, Any]:
    state = release_state(step=step, **more)
    state["fleet_spec"]["judgment"] = {
        "errors": {"critical": False, "weight": 10},
        "latency": {"weight": 90},
        "extensions": 1,
        "when_marginal": when_marginal,
        "approval_timeout_minutes": 30,
    }
    state["fleet_spec"]["approval_seconds"] = 1800
    return state


def test_a_marginal_step_is_baked_again_then_fails_if_still_marginal(aws: StubbedAws) -> None:
    # Given a step whose judgment is marginal, with one extension allowed
    step = _at_step(5)
    for _ in range(2):
        _targets(aws, healthy=3)
        _alarms(aws)
        _metrics(aws, Captured(), datetime.fromisoformat(step["at"]), **MARGINAL)
        expect_step(aws, "canary judged", traffic=5, outcome="marginal", score=90.0, judged=ANY)

    # When it is judged: it asks for the bake again, with no extension left
    first = handle(step_input(_marginal_state(step), "judge"), SETTINGS, aws.clients)
    assert first == {
        "summary": f"3 of 3 targets healthy on {AMI} (3 healthy)",
        "extend": True,
        "hold": False,
        "extensions_left": 0,
    }

    # Then judged again after it, still marginal: the step fails
    with pytest.raises(GateFailedError, match=r"^canary judgment marginal \(score 90\)"):
        handle(step_input(_marginal_state(step, gate=first), "judge"), SETTINGS, aws.clients)


def test_a_fleet_that_holds_asks_a_person_once_its_extensions_are_used(aws: StubbedAws) -> None:
    # Given a marginal step of a fleet that holds, its one extension used
    step = _at_step(5)
    _targets(aws, healthy=3)
    _alarms(aws)
    _metrics(aws, Captured(), datetime.fromisoformat(step["at"]), **MARGINAL)
    expect_step(aws, "canary judged", traffic=5, outcome="marginal", score=90.0, judged=ANY)
    used = {"summary": "baked once", "extend": True, "hold": False, "extensions_left": 0}
    state = _marginal_state(step, "hold", gate=used)

    # When it is judged again, still marginal
    held = handle(step_input(state, "judge"), SETTINGS, aws.clients)

    # Then it neither fails nor passes: it holds, saying why
    assert held["hold"] is True
    assert held["extend"] is False
    assert held["summary"].startswith("canary judgment marginal: score 90 below 95")
    assert "5xx rate fail: canary 5%, baseline 0.1%" in held["summary"]


def test_the_held_step_keeps_its_token_on_the_fleet_and_asks_for_a_decision(
    aws: StubbedAws,
) -> None:
    # Given the held step (the judge said hold)
    held = {"summary": "canary judgment marginal (score 90): 5xx rate fail", "extend": False,
            "hold": True}  # fmt: skip
    state = _marginal_state(_at_step(5), "hold", gate=held)
    asked = {"traffic": 5, "judgment": held["summary"], "timeout_minutes": 30}
    # the token goes on the fleet item while this release holds the lock
    expect_approval_kept(
        aws,
        {
            "M": {
                "token": {"S": "token-1"},
                "release": {"S": RELEASE_ID},
                "asked_at": ANY,
                **attributes.typed(asked)["M"],
            }
        },
    )
    expect_step(aws, "approval awaited", asked_at=ANY, **asked)
    expect_event(aws, "Canary Approval Requested", **asked)

    # When the step runs with its task token
    event = {**step_input(state, "ask"), "task_token": "token-1"}
    facts = handle(event, SETTINGS, aws.clients)

    # Then it answers what it asked (the state machine waits for the token)
    assert {k: v for k, v in facts.items() if k != "asked_at"} == asked


def test_the_ask_without_a_token_is_refused_before_any_call(aws: StubbedAws) -> None:
    state = _marginal_state(_at_step(5), "hold")
    with pytest.raises(MalformedStepError, match="needs a task token"):
        handle(step_input(state, "ask"), SETTINGS, aws.clients)
