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


# A promotion: sandbox's plan took an image through all its waves; this environment
# (`production`, promoted from sandbox) starts its own plan with the same AMIs.
PROMOTED = {**PLANNED, "PHOENIX_ENVIRONMENT": "production", "PHOENIX_PROMOTED_FROM": "sandbox"}
PRODUCTION_PLANS = PLANS.replace("phoenix-sandbox-plan-", "phoenix-production-plan-")
EARLIER = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{EARLIER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _succeeded(environment: str = "sandbox", **detail: object) -> dict[str, object]:
    image = f"arn:aws:imagebuilder:us-east-1:{EARLIER}:image/phoenix-{environment}-golden/1.0.0/4"
    body = {
        "environment": environment,
        "plan": "rollout",
        "run": "e-1",
        "status": "succeeded",
        "image": image,
        "amis": {"us-east-1": AMI},
        "keys": {"us-east-1": KEY},
        **detail,
    }
    return {"version": "0", "id": "s-1", "detail-type": "Plan Succeeded", "source": "phoenix",
            "account": EARLIER, "time": "2026-12-02T09:00:00Z", "region": "us-east-1",
            "resources": [], "detail": body}  # fmt: skip


def test_a_succeeded_plan_of_the_earlier_environment_starts_this_ones_plan(
    clients: Clients,
) -> None:
    settings = trigger_settings({**PROMOTED, "PHOENIX_PLAN_STATE_MACHINE_PREFIX": PRODUCTION_PLANS})
    clients.executions.add_response(
        "start_execution",
        {"executionArn": f"{PRODUCTION_PLANS}rollout:s-1", "startDate": "2026-12-02T09:00:00Z"},
        {"stateMachineArn": f"{PRODUCTION_PLANS}rollout", "name": "s-1", "input": ANY},
    )
    inputs = recorded_inputs(clients)
    event = _succeeded()

    result = handle(event, settings, clients.imagebuilder, clients.stepfunctions, clients.ssm)

    assert result["plan"] == "rollout"
    assert inputs == [
        {
            "environment": "production",
            "plan": "rollout",
            "image": event["detail"]["image"],  # type: ignore[index]
            "amis": {"us-east-1": AMI},
            "event_id": "s-1",
            "trigger": "promoted from sandbox (plan run e-1)",
            "promoted_from": "sandbox",
            "keys": {"us-east-1": KEY},
        }
    ]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_succeeded("staging"), "this environment is promoted from sandbox"),
        (
            _succeeded(keys={"us-east-1": KEY.replace(EARLIER, "999999999999")}),
            "keys not of the account that sent the event",
        ),
        (_succeeded(amis={"us-east-1": "ami-nope"}), "not AMI ids: ami-nope"),
        (_succeeded(status="failed"), "validation error"),
        (
            _succeeded(image=f"arn:aws:imagebuilder:us-east-1:{EARLIER}:image/phoenix-sandbox-"
                       "silver/1.0.0/4"),
            "no plan here releases the images of pipeline 'silver'",
        ),
    ],
)  # fmt: skip
def test_a_succeeded_plan_this_environment_does_not_follow_starts_nothing(
    clients: Clients, event: dict[str, object], reason: str
) -> None:
    # no Step Functions call is expected: any would fail
    result = handle(
        event, trigger_settings(PROMOTED), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert reason in str(result["refused"])


def test_an_environment_promoted_from_none_refuses_a_succeeded_plan(clients: Clients) -> None:
    result = handle(
        _succeeded(), trigger_settings(PLANNED), clients.imagebuilder, clients.stepfunctions,
        clients.ssm,
    )  # fmt: skip
    assert "promoted from none" in str(result["refused"])
