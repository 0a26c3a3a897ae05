"""The release trigger, against real sample events and botocore's API models (Stubber)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from local.lambda_dispatch import LambdaContext
from phoenix.release.handlers import trigger as trigger_handler
from phoenix.release.handlers.trigger import handle
from phoenix.release.runtime.settings import TriggerSettings as Settings
from tests.conftest import SynthesizedApp
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
    ssm: Any
    images: Stubber
    executions: Stubber
    parameters: Stubber


@pytest.fixture
def clients() -> Iterator[Clients]:
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


def _environment(
    subscriptions: dict[str, list[str]] | None = None, more: dict[str, str] | None = None
) -> dict[str, str]:
    return {
        "PHOENIX_ENVIRONMENT": "sandbox",
        "POWERTOOLS_SERVICE_NAME": "phoenix-release-trigger",
        "PHOENIX_STATE_MACHINE_ARN": MACHINE,
        "PHOENIX_SUBSCRIPTIONS": json.dumps(
            subscriptions or {"phoenix-sandbox-golden": ["web", "api"]}
        ),
        "AWS_REGION": "us-east-1",
        **(more or {}),
    }


def _settings(
    subscriptions: dict[str, list[str]] | None = None, more: dict[str, str] | None = None
) -> Settings:
    return Settings.from_environ(_environment(subscriptions, more))


def _image(region: str = "us-east-1", **copies: str) -> dict[str, Any]:
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
    result = handle(IMAGE, _settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm)
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
        clients.ssm,
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
        clients.ssm,
    )
    assert result == {"started": [], "duplicates": ["web"], "refused": None}


def test_a_requested_release_starts_for_its_fleet(clients: Clients) -> None:
    _expect_start(clients, "web", REQUESTED["id"])
    result = handle(
        REQUESTED, _settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
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
    result = handle(
        REFUSED[case], _settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result["started"] == []
    assert result["refused"]


def test_an_image_without_an_ami_in_this_region_is_refused(clients: Clients) -> None:
    clients.images.add_response(
        "get_image", _image(region="eu-west-1"), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    result = handle(IMAGE, _settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm)
    assert result["refused"] == f"image {IMAGE['resources'][0]!r} has no AMI in us-east-1"


def test_an_image_image_builder_does_not_know_is_refused(clients: Clients) -> None:
    clients.images.add_client_error(
        "get_image", service_error_code="ResourceNotFoundException", http_status_code=404
    )
    result = handle(IMAGE, _settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm)
    assert "has no image" in str(result["refused"])


# A disaster recovery region's trigger: images are baked in the primary (us-east-1).
DR = {"AWS_REGION": "us-west-2", "PHOENIX_IMAGE_REGION": "us-east-1"}
DR_AMI = "ami-0123456789abcdef0"


def test_a_dr_trigger_releases_its_own_regions_copy_of_a_primary_image(
    clients: Clients,
) -> None:
    clients.images.add_response(
        "get_image", _image(us_west_2=DR_AMI), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    inputs: list[dict[str, Any]] = []
    clients.executions.add_response(
        "start_execution",
        {"executionArn": f"{MACHINE}:web", "startDate": "2026-11-25T09:00:00Z"},
        {"stateMachineArn": MACHINE, "name": f"web-{IMAGE['id']}", "input": ANY},
    )
    original = clients.stepfunctions.start_execution

    def recording(**kwargs: Any) -> Any:
        inputs.append(kwargs)
        return original(**kwargs)

    clients.stepfunctions.start_execution = recording
    settings = _settings({"phoenix-sandbox-golden": ["web"]}, more=DR)
    result = handle(IMAGE, settings, clients.imagebuilder, clients.stepfunctions, clients.ssm)
    assert result["started"] == ["web"]
    assert json.loads(inputs[0]["input"])["ami"] == DR_AMI


def test_an_image_baked_in_another_region_is_refused_without_any_aws_call(
    clients: Clients,
) -> None:
    elsewhere = _changed(
        IMAGE, lambda e: e.update(resources=[e["resources"][0].replace("us-east-1", "eu-west-1")])
    )
    result = handle(
        elsewhere, _settings(more=DR), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result["refused"] == (
        f"image {elsewhere['resources'][0]!r} was baked in eu-west-1, not in us-east-1"
    )


def test_the_handler_reads_images_in_their_region_and_starts_releases_in_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    regions: dict[str, str] = {}

    def handled(
        event: Any, settings: Settings, imagebuilder: Any, stepfunctions: Any, ssm: Any
    ) -> Any:
        regions.update(
            images=imagebuilder.meta.region_name,
            releases=stepfunctions.meta.region_name,
            pointers=ssm.meta.region_name,
        )
        return {}

    monkeypatch.setattr(trigger_handler, "handle", handled)
    credentials = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}
    for name, value in _environment(more=DR | credentials).items():
        monkeypatch.setenv(name, value)
    function = "arn:aws:lambda:us-west-2:123456789012:function:phoenix-trigger"
    context = LambdaContext("phoenix-trigger", function, 256, 30)
    trigger_handler.lambda_handler(IMAGE, context)  # type: ignore[arg-type]
    assert regions == {"images": "us-east-1", "releases": "us-west-2", "pointers": "us-west-2"}


# In production's templates (config/production.yaml: us-east-1, DR us-west-2).
ACCOUNT_ = r"(\d{12}|ACCOUNT)"
PRIMARY_IMAGES = rf"arn:aws:imagebuilder:us-east-1:{ACCOUNT_}:image/phoenix-production-golden/"
RULE = "AWS::Events::Rule"


def _text(value: Any, region: str) -> Any:
    """A template value with Fn::Join and the pseudo parameters rendered (enough for ARNs)."""
    if isinstance(value, list):
        return [_text(v, region) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_text(part, region) for part in parts)
    pseudo = {"AWS::Region": region, "AWS::AccountId": "ACCOUNT", "AWS::Partition": "aws"}
    if set(value) == {"Ref"} and value["Ref"] in pseudo:
        return pseudo[value["Ref"]]
    return {k: _text(v, region) for k, v in value.items()}


def _resource(
    template: dict[str, Any], kind: str, logical_prefix: str
) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (name, r)
        for name, r in template["Resources"].items()
        if r["Type"] == kind and name.startswith(logical_prefix)
    ]
    return found


def _role_statements(template: dict[str, Any], role: str, region: str) -> list[Any]:
    return [
        _text(statement, region)
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_a_dr_region_hears_of_and_reads_the_primarys_images(
    synthesized: SynthesizedApp,
) -> None:
    primary = synthesized.template("phoenix-production")
    dr = synthesized.template("phoenix-production-us-west-2")

    # The primary forwards what its own trigger hears to the DR region's default bus,
    # with a role that may put events on that bus only
    _, own = _resource(primary, RULE, "ReleaseImageAvailable")
    _, forward = _resource(primary, RULE, "ForwardImagesuswest2")
    assert forward["Properties"]["EventPattern"] == own["Properties"]["EventPattern"]
    (target,) = forward["Properties"]["Targets"]
    bus = _text(target["Arn"], "us-east-1")
    assert re.fullmatch(rf"arn:aws:events:us-west-2:{ACCOUNT_}:event-bus/default", bus)
    role = target["RoleArn"]["Fn::GetAtt"][0]
    assert _role_statements(primary, role, "us-east-1") == [
        {"Action": "events:PutEvents", "Effect": "Allow", "Resource": bus}
    ]

    # The DR region's own trigger hears of the primary's images and may read only those
    _, heard = _resource(dr, RULE, "ReleaseImageAvailable")
    (prefix,) = _text(heard["Properties"]["EventPattern"]["resources"], "us-west-2")
    assert re.fullmatch(PRIMARY_IMAGES, prefix["prefix"])
    _, trigger = _resource(dr, "AWS::Lambda::Function", "ReleaseTrigger")
    assert trigger["Properties"]["Environment"]["Variables"]["PHOENIX_IMAGE_REGION"] == "us-east-1"
    role, _ = _resource(dr, "AWS::IAM::Role", "ReleaseTriggerRole")
    (reads,) = [
        s for s in _role_statements(dr, role, "us-west-2") if s["Action"] == "imagebuilder:GetImage"
    ]
    assert re.fullmatch(PRIMARY_IMAGES + r"\*", reads["Resource"])


# A deploy of this region's stack (AWS's sample event, as this stack's update).
STACK = json.loads((EVENTS / "cloudformation_stack_status_change.json").read_text())
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
    # Given twelve fleets, one of them without its state yet
    fleets = sorted(f"f{n:02d}" for n in range(12))
    amis = {f: f"ami-0{n:016x}" for n, f in enumerate(fleets) if f != "f05"}
    _pointers(clients, fleets[:10], amis)  # GetParameters takes ten names at a time
    _pointers(clients, fleets[10:], amis)
    inputs: list[dict[str, Any]] = []
    for fleet in sorted(amis):
        _expect_start(clients, fleet, STACK["id"])
    original = clients.stepfunctions.start_execution

    def recording(**kwargs: Any) -> Any:
        inputs.append(json.loads(kwargs["input"]))
        return original(**kwargs)

    clients.stepfunctions.start_execution = recording
    settings = _settings({"phoenix-sandbox-golden": fleets}, more={"PHOENIX_STACK_ID": STACK_ID})

    # When this stack's update completes
    result = handle(DEPLOYED, settings, clients.imagebuilder, clients.stepfunctions, clients.ssm)

    # Then every fleet with a pointer gets a release of that AMI, named after the event
    assert result == {"started": sorted(amis), "duplicates": [], "refused": None}
    assert {i["fleet"]: i["ami"] for i in inputs} == amis
    assert {i["trigger"] for i in inputs} == {"deploy of teststack"}
    assert {i["event_id"] for i in inputs} == {STACK["id"]}


@pytest.mark.parametrize(
    "status", ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE", "CREATE_COMPLETE"]
)
def test_only_a_completed_update_of_this_stack_releases(clients: Clients, status: str) -> None:
    event = DEPLOYED | {"detail": DEPLOYED["detail"] | {"status-details": {"status": status}}}
    settings = _settings(more={"PHOENIX_STACK_ID": STACK_ID})
    result = handle(event, settings, clients.imagebuilder, clients.stepfunctions, clients.ssm)
    assert result["refused"] == f"stack status is {status}, not UPDATE_COMPLETE"
    other = _settings(more={"PHOENIX_STACK_ID": STACK_ID.replace("teststack", "other")})
    result = handle(DEPLOYED, other, clients.imagebuilder, clients.stepfunctions, clients.ssm)
    assert result["refused"] == f"stack {STACK_ID} is not this environment's"
