"""The release trigger and the end of a deploy: a release of each fleet's pointer AMI,
against AWS's sample event and botocore's API models (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from phoenix.release.handlers.trigger import handle
from phoenix.release.runtime.events import StackStatusChange
from phoenix.release.runtime.trigger import RefusedError, check_deploy
from tests.release.trigger_world import (
    Clients,
    expect_registry,
    expect_start,
    recorded_inputs,
    stubbed_clients,
    trigger_settings,
)
from tests.sample_events import sample_event


@pytest.fixture
def clients() -> Iterator[Clients]:
    with stubbed_clients() as made:
        yield made


# A deploy of this region's stack (AWS's sample event, as this stack's update).
STACK = sample_event("cloudformation_stack_status_change")
STACK_ID = STACK["detail"]["stack-id"]
DEPLOYED = STACK | {
    "detail": STACK["detail"]
    | {"status-details": {"status": "UPDATE_COMPLETE", "status-reason": ""}}
}


def _pointer(fleet: str) -> str:
    return f"/phoenix/sandbox/{fleet}/ami"


def _pointers(clients: Clients, fleets: list[str], amis: dict[str, str]) -> None:
    found = [
        {"Name": _pointer(f), "Type": "String", "Value": amis[f], "Version": 1}
        for f in fleets
        if f in amis
    ]
    missing = [_pointer(f) for f in fleets if f not in amis]
    response: dict[str, Any] = {"Parameters": found}
    if missing:
        response["InvalidParameters"] = missing
    clients.parameters.add_response(
        "get_parameters", response, {"Names": [_pointer(f) for f in fleets]}
    )


def test_a_finished_deploy_releases_each_fleet_s_pointer_ami(clients: Clients) -> None:
    # Given twelve fleets in the deployed stack, one of them without its state yet, and
    # one fleet in another stack
    fleets = sorted(f"f{n:02d}" for n in range(12))
    amis = {f: f"ami-0{n:016x}" for n, f in enumerate(fleets) if f != "f05"}
    stacks = dict.fromkeys(fleets, "teststack") | {"elsewhere": "phoenix-sandbox-fleets-1"}
    expect_registry(clients, dict.fromkeys(stacks, "golden"), stacks)
    _pointers(clients, fleets[:10], amis)  # GetParameters takes ten names at a time
    _pointers(clients, fleets[10:], amis)
    for fleet in sorted(amis):
        expect_start(clients, fleet, STACK["id"])
    inputs = recorded_inputs(clients)
    settings = trigger_settings(more={"PHOENIX_STACK_ID": STACK_ID})

    # When this stack's update completes
    result = handle(DEPLOYED, settings, clients.imagebuilder, clients.stepfunctions, clients.ssm)

    # Then every fleet of that stack with a pointer gets a release of that AMI, named after
    # the event
    assert result == {"started": sorted(amis), "duplicates": [], "refused": None}
    assert {i["fleet"]: i["ami"] for i in inputs} == amis
    assert {i["trigger"] for i in inputs} == {"deploy of teststack"}
    assert {i["event_id"] for i in inputs} == {STACK["id"]}


@pytest.mark.parametrize(
    "status", ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE", "CREATE_COMPLETE"]
)
def test_only_a_completed_update_of_this_stack_releases(clients: Clients, status: str) -> None:
    event = DEPLOYED | {"detail": DEPLOYED["detail"] | {"status-details": {"status": status}}}
    settings = trigger_settings(more={"PHOENIX_STACK_ID": STACK_ID})
    result = handle(event, settings, clients.imagebuilder, clients.stepfunctions, clients.ssm)
    assert result["refused"] == f"stack status is {status}, not UPDATE_COMPLETE"
    other = trigger_settings(more={"PHOENIX_STACK_ID": STACK_ID.replace("teststack", "other")})
    result = handle(DEPLOYED, other, clients.imagebuilder, clients.stepfunctions, clients.ssm)
    assert result["refused"] == f"stack {STACK_ID} is not this environment's"


FLEET_STACK = STACK_ID.replace("stack/teststack/", "stack/teststack-fleets-2/")


@pytest.mark.parametrize(
    ("stack", "accepted"),
    [
        (FLEET_STACK, True),  # one of this stack's fleet stacks
        (FLEET_STACK.replace(":us-west-1:", ":eu-west-1:"), False),  # another region's
        (FLEET_STACK.replace("teststack-fleets-2", "teststack-fleetsx"), False),
        (STACK_ID.replace("teststack", "teststack-state"), False),  # its state stack
    ],
)
def test_a_deploy_of_a_fleet_stack_is_this_environment_s(stack: str, accepted: bool) -> None:
    event = DEPLOYED | {"detail": DEPLOYED["detail"] | {"stack-id": stack}}
    parsed = StackStatusChange.model_validate(event)
    if accepted:
        check_deploy(parsed, STACK_ID, "teststack-fleets-")
    else:
        with pytest.raises(RefusedError, match="is not this environment's"):
            check_deploy(parsed, STACK_ID, "teststack-fleets-")
