"""The release trigger, against real sample events and botocore's API models (Stubber)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from phoenix.release.handlers.trigger import handle
from phoenix.release.runtime.settings import TriggerSettings as Settings
from tests.release.release_state import Credentials

EVENTS = Path(__file__).resolve().parents[1] / "events"
IMAGE = json.loads((EVENTS / "imagebuilder_image_available.json").read_text())
REQUESTED = json.loads((EVENTS / "phoenix_release_requested.json").read_text())
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:phoenix-sandbox-release"
AMI = "ami-0fedcba9876543210"


@dataclass
class Clients:
    imagebuilder: Any
    stepfunctions: Any
    images: Stubber
    executions: Stubber


@pytest.fixture
def clients() -> Iterator[Clients]:
    credentials: Credentials = {"aws_access_key_id": "t", "aws_secret_access_key": "t"}
    imagebuilder = boto3.client("imagebuilder", region_name="us-east-1", **credentials)
    stepfunctions = boto3.client("stepfunctions", region_name="us-east-1", **credentials)
    with Stubber(imagebuilder) as images, Stubber(stepfunctions) as executions:
        yield Clients(imagebuilder, stepfunctions, images, executions)
        images.assert_no_pending_responses()
        executions.assert_no_pending_responses()


def _settings(subscriptions: dict[str, list[str]] | None = None) -> Settings:
    return Settings.from_environ(
        {
            "PHOENIX_ENVIRONMENT": "sandbox",
            "POWERTOOLS_SERVICE_NAME": "phoenix-release-trigger",
            "PHOENIX_STATE_MACHINE_ARN": MACHINE,
            "PHOENIX_SUBSCRIPTIONS": json.dumps(
                subscriptions or {"phoenix-sandbox-golden": ["web", "api"]}
            ),
            "AWS_REGION": "us-east-1",
        }
    )


def _image(region: str = "us-east-1") -> dict[str, Any]:
    return {
        "image": {
            "arn": IMAGE["resources"][0],
            "name": "phoenix-sandbox-golden",
            "version": "1.0.0/1",
            "outputResources": {"amis": [{"region": region, "image": AMI}]},
        }
    }


def _expect_start(clients: Clients, fleet: str, event_id: str) -> None:
    clients.executions.add_response(
        "start_execution",
        {"executionArn": f"{MACHINE}:{fleet}", "startDate": "2026-11-25T09:00:00Z"},
        {"stateMachineArn": MACHINE, "name": f"{fleet}-{event_id}", "input": ANY},
    )


def test_an_available_image_starts_one_release_per_subscribed_fleet(clients: Clients) -> None:
    clients.images.add_response(
        "get_image", _image(), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    for fleet in ("web", "api"):
        _expect_start(clients, fleet, IMAGE["id"])
    result = handle(IMAGE, _settings(), clients.imagebuilder, clients.stepfunctions)
    assert result == {"started": ["web", "api"], "duplicates": [], "refused": None}


def test_the_release_input_names_fleet_ami_image_and_event(clients: Clients) -> None:
    clients.images.add_response(
        "get_image", _image(), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    inputs: list[dict[str, Any]] = []
    clients.executions.add_response(
        "start_execution",
        {"executionArn": f"{MACHINE}:web", "startDate": "2026-11-25T09:00:00Z"},
        {"stateMachineArn": MACHINE, "name": f"web-{IMAGE['id']}", "input": ANY},
    )
    original = clients.stepfunctions.start_execution

    def recording(**kwargs: Any) -> Any:
        inputs.append(json.loads(kwargs["input"]))
        return original(**kwargs)

    clients.stepfunctions.start_execution = recording
    handle(
        IMAGE,
        _settings({"phoenix-sandbox-golden": ["web"]}),
        clients.imagebuilder,
        clients.stepfunctions,
    )
    assert inputs == [
        {
            "environment": "sandbox",
            "fleet": "web",
            "ami": AMI,
            "trigger": "image-available",
            "event_id": IMAGE["id"],
            "image": IMAGE["resources"][0],
        }
    ]


def test_the_same_event_again_starts_nothing_twice(clients: Clients) -> None:
    clients.images.add_response(
        "get_image", _image(), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    clients.executions.add_client_error(
        "start_execution", service_error_code="ExecutionAlreadyExists", http_status_code=400
    )
    result = handle(
        IMAGE,
        _settings({"phoenix-sandbox-golden": ["web"]}),
        clients.imagebuilder,
        clients.stepfunctions,
    )
    assert result == {"started": [], "duplicates": ["web"], "refused": None}


def test_a_requested_release_starts_for_its_fleet(clients: Clients) -> None:
    _expect_start(clients, "web", REQUESTED["id"])
    result = handle(REQUESTED, _settings(), clients.imagebuilder, clients.stepfunctions)
    assert result["started"] == ["web"]


def _changed(event: dict[str, Any], change: Any) -> dict[str, Any]:
    copied = copy.deepcopy(event)
    change(copied)
    return copied


REFUSED = {
    "not AVAILABLE": _changed(IMAGE, lambda e: e["detail"]["state"].update(status="BUILDING")),
    "another pipeline": _changed(
        IMAGE,
        lambda e: e.update(resources=[e["resources"][0].replace("sandbox-golden", "prod-golden")]),
    ),
    "not an image ARN": _changed(IMAGE, lambda e: e.update(resources=["arn:aws:s3:::bucket"])),
    "malformed": _changed(IMAGE, lambda e: e.pop("detail")),
    "not an event at all": {"hello": "world"},
    "unknown fleet": _changed(REQUESTED, lambda e: e["detail"].update(fleet="nosuch")),
    "bad AMI in a request": _changed(REQUESTED, lambda e: e["detail"].update(ami="ubuntu")),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_bad_or_foreign_events_are_refused_without_any_aws_call(
    case: str, clients: Clients
) -> None:
    # The stubbers have no responses queued: any call at all would fail the test.
    result = handle(REFUSED[case], _settings(), clients.imagebuilder, clients.stepfunctions)
    assert result["started"] == []
    assert result["refused"]


def test_an_image_without_an_ami_in_this_region_is_refused(clients: Clients) -> None:
    clients.images.add_response(
        "get_image", _image(region="eu-west-1"), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    result = handle(IMAGE, _settings(), clients.imagebuilder, clients.stepfunctions)
    assert result["refused"] == f"image {IMAGE['resources'][0]!r} has no AMI in us-east-1"


def test_an_image_image_builder_does_not_know_is_refused(clients: Clients) -> None:
    clients.images.add_client_error(
        "get_image", service_error_code="ResourceNotFoundException", http_status_code=404
    )
    result = handle(IMAGE, _settings(), clients.imagebuilder, clients.stepfunctions)
    assert "has no image" in str(result["refused"])
