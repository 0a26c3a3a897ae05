"""The release trigger's world for Stubber tests: its clients, settings, the fleet
registry it reads and expected StartExecution calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from phoenix.release.runtime.settings import TriggerSettings as Settings
from tests.release.release_state import Credentials, fleet_spec
from tests.sample_events import sample_event

IMAGE = sample_event("imagebuilder_image_available")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:phoenix-sandbox-release"
AMI = "ami-0fedcba9876543210"


@dataclass
class Clients:
    imagebuilder: Any
    stepfunctions: Any
    ssm: Any
    images: Stubber
    executions: Stubber
    parameters: Stubber


@contextmanager
def stubbed_clients() -> Iterator[Clients]:
    credentials: Credentials = {"aws_access_key_id": "t", "aws_secret_access_key": "t"}
    imagebuilder = boto3.client("imagebuilder", region_name="us-east-1", **credentials)
    stepfunctions = boto3.client("stepfunctions", region_name="us-east-1", **credentials)
    ssm = boto3.client("ssm", region_name="us-east-1", **credentials)
    with (
        Stubber(imagebuilder) as images,
        Stubber(stepfunctions) as executions,
        Stubber(ssm) as parameters,
    ):
        yield Clients(imagebuilder, stepfunctions, ssm, images, executions, parameters)
        images.assert_no_pending_responses()
        executions.assert_no_pending_responses()
        parameters.assert_no_pending_responses()


def trigger_environment(more: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "PHOENIX_ENVIRONMENT": "sandbox",
        "POWERTOOLS_SERVICE_NAME": "phoenix-release-trigger",
        "PHOENIX_STATE_MACHINE_ARN": MACHINE,
        "AWS_REGION": "us-east-1",
        **(more or {}),
    }


def trigger_settings(more: dict[str, str] | None = None) -> Settings:
    return Settings.from_environ(trigger_environment(more))


def _registered(fleet: str, pipeline: str, stack: str = "phoenix-sandbox") -> dict[str, Any]:
    spec = json.dumps(fleet_spec(name=fleet, image_pipeline=pipeline, stack=stack))
    return {"Name": f"/phoenix-fleets/sandbox/{fleet}", "Type": "String", "Value": spec}


def expect_registry(
    clients: Clients, fleets: dict[str, str] | None = None, stacks: dict[str, str] | None = None
) -> None:
    """The registry read by path (fleet -> its image pipeline; default: `web` and `api` on
    `golden`; each in the stack `stacks` names, by default phoenix-sandbox), in pages of
    ten as the trigger asks for them."""
    chosen = fleets or {"web": "golden", "api": "golden"}
    where = stacks or {}
    entries = [_registered(f, p, where.get(f, "phoenix-sandbox")) for f, p in chosen.items()]
    pages = [entries[first : first + 10] for first in range(0, len(entries), 10)] or [[]]
    for number, page in enumerate(pages):
        answer: dict[str, Any] = {"Parameters": page}
        if number < len(pages) - 1:
            answer["NextToken"] = f"page-{number + 1}"
        expected: dict[str, Any] = {
            "Path": "/phoenix-fleets/sandbox",
            "Recursive": False,
            "MaxResults": 10,
        }
        if number:
            expected["NextToken"] = f"page-{number}"
        clients.parameters.add_response("get_parameters_by_path", answer, expected)


def expect_fleet_read(clients: Clients, fleet: str, pipeline: str | None = "golden") -> None:
    """One fleet read by name (None: the registry does not hold it)."""
    name = f"/phoenix-fleets/sandbox/{fleet}"
    answer: dict[str, Any] = (
        {"Parameters": [_registered(fleet, pipeline)]}
        if pipeline
        else {"Parameters": [], "InvalidParameters": [name]}
    )
    clients.parameters.add_response("get_parameters", answer, {"Names": [name]})


def image_of(region: str = "us-east-1", **copies: str) -> dict[str, Any]:
    amis = [{"region": region, "image": AMI}]
    amis += [{"region": r.replace("_", "-"), "image": ami} for r, ami in copies.items()]
    return {
        "image": {
            "arn": IMAGE["resources"][0],
            "name": "phoenix-sandbox-golden",
            "version": "1.0.0/1",
            "outputResources": {"amis": amis},
        }
    }


def expect_start(clients: Clients, fleet: str, event_id: str) -> None:
    clients.executions.add_response(
        "start_execution",
        {"executionArn": f"{MACHINE}:{fleet}", "startDate": "2026-11-25T09:00:00Z"},
        {"stateMachineArn": MACHINE, "name": f"{fleet}-{event_id}", "input": ANY},
    )


def recorded_inputs(clients: Clients) -> list[dict[str, Any]]:
    """The input of every StartExecution the trigger makes from now on, as JSON read back
    (the stubbed client still answers each call)."""
    inputs: list[dict[str, Any]] = []
    original = clients.stepfunctions.start_execution

    def recording(**kwargs: Any) -> Any:
        inputs.append(json.loads(kwargs["input"]))
        return original(**kwargs)

    clients.stepfunctions.start_execution = recording
    return inputs
