"""The release trigger and release plans: an image whose pipeline has a plan starts one
plan run (in the primary region), once, and no release per fleet (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.stub import ANY

from phoenix.release.handlers.trigger import handle
from tests.release.trigger_world import (
    AMI,
    Clients,
    expect_registry,
    image_of,
    recorded_inputs,
    stubbed_clients,
    trigger_settings,
)
from tests.sample_events import sample_event

IMAGE = sample_event("imagebuilder_image_available")
PLANS = "arn:aws:states:us-east-1:123456789012:stateMachine:phoenix-sandbox-plan-"
PLANNED = {
    "PHOENIX_PLANS": '{"golden": "rollout"}',
    "PHOENIX_RUNS_PLANS": "true",
    "PHOENIX_PLAN_STATE_MACHINE_PREFIX": PLANS,
}
DR_AMI = "ami-0123456789abcdef0"


@pytest.fixture
def clients() -> Iterator[Clients]:
    with stubbed_clients() as made:
        yield made


def _expect_plan_start(clients: Clients) -> None:
    clients.executions.add_response(
        "start_execution",
        {"executionArn": f"{PLANS}rollout:{IMAGE['id']}", "startDate": "2026-12-02T09:00:00Z"},
        {"stateMachineArn": f"{PLANS}rollout", "name": IMAGE["id"], "input": ANY},
    )


def test_an_image_of_a_planned_pipeline_starts_one_plan_run_with_every_regions_ami(
    clients: Clients,
) -> None:
    expect_registry(clients, {"web": "golden", "api": "golden"})
    clients.images.add_response(
        "get_image", image_of(us_west_2=DR_AMI), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    _expect_plan_start(clients)
    inputs = recorded_inputs(clients)

    result = handle(
        IMAGE, trigger_settings(PLANNED), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )

    assert result == {"started": [], "duplicates": [], "refused": None, "plan": "rollout"}
    assert inputs == [
        {
            "environment": "sandbox",
            "plan": "rollout",
            "image": IMAGE["resources"][0],
            "amis": {"us-east-1": AMI, "us-west-2": DR_AMI},
            "event_id": IMAGE["id"],
            "trigger": "image-available",
        }
    ]


def test_the_same_image_event_again_starts_no_second_plan_run(clients: Clients) -> None:
    expect_registry(clients, {"web": "golden"})
    clients.images.add_response(
        "get_image", image_of(), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    clients.executions.add_client_error(
        "start_execution", service_error_code="ExecutionAlreadyExists", http_status_code=400
    )
    result = handle(
        IMAGE, trigger_settings(PLANNED), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result["plan"] is None
    assert result["refused"] is None


def test_a_dr_region_leaves_a_planned_image_to_the_primarys_plan(clients: Clients) -> None:
    # Given a disaster recovery region's trigger (it runs no plans)
    dr = {**PLANNED, "PHOENIX_RUNS_PLANS": "false", "AWS_REGION": "us-west-2"}
    dr["PHOENIX_IMAGE_REGION"] = "us-east-1"
    expect_registry(clients, {"web": "golden"})

    # When the primary's image reaches it, then nothing starts and it says why
    result = handle(
        IMAGE, trigger_settings(dr), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )

    assert result["started"] == []
    assert result["refused"] == (
        "the images of this pipeline go through plan 'rollout', run by the primary region"
    )


def test_an_image_of_a_pipeline_without_a_plan_still_starts_a_release_per_fleet(
    clients: Clients,
) -> None:
    other = {**PLANNED, "PHOENIX_PLANS": '{"services": "rollout"}'}
    expect_registry(clients, {"web": "golden"})
    clients.images.add_response(
        "get_image", image_of(), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    clients.executions.add_response(
        "start_execution",
        {"executionArn": "arn:x", "startDate": "2026-12-02T09:00:00Z"},
        {"stateMachineArn": ANY, "name": f"web-{IMAGE['id']}", "input": ANY},
    )
    result = handle(
        IMAGE, trigger_settings(other), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result["started"] == ["web"]
