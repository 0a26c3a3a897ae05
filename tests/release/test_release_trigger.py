"""The release trigger, against real sample events and botocore's API models (Stubber)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import ANY

from local.lambda_dispatch import LambdaContext
from phoenix.release.handlers import trigger as trigger_handler
from phoenix.release.handlers.trigger import handle
from phoenix.release.runtime.settings import TriggerSettings as Settings
from tests.conftest import SynthesizedApp
from tests.release.trigger_world import (
    AMI,
    MACHINE,
    Clients,
    expect_fleet_read,
    expect_registry,
    expect_start,
    image_of,
    recorded_inputs,
    stubbed_clients,
    trigger_environment,
    trigger_settings,
)
from tests.sample_events import sample_event

IMAGE = sample_event("imagebuilder_image_available")
REQUESTED = sample_event("phoenix_release_requested")


@pytest.fixture
def clients() -> Iterator[Clients]:
    with stubbed_clients() as made:
        yield made


def test_an_available_image_starts_one_release_per_subscribed_fleet(clients: Clients) -> None:
    expect_registry(clients, {"web": "golden", "api": "golden", "db": "other"})
    clients.images.add_response(
        "get_image", image_of(), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    for fleet in ("api", "web"):
        expect_start(clients, fleet, IMAGE["id"])
    result = handle(
        IMAGE, trigger_settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result == {"started": ["api", "web"], "duplicates": [], "refused": None}


def test_the_release_input_names_fleet_ami_image_and_event(clients: Clients) -> None:
    expect_registry(clients, {"web": "golden"})
    clients.images.add_response(
        "get_image", image_of(), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    clients.executions.add_response(
        "start_execution",
        {"executionArn": f"{MACHINE}:web", "startDate": "2026-11-25T09:00:00Z"},
        {"stateMachineArn": MACHINE, "name": f"web-{IMAGE['id']}", "input": ANY},
    )
    inputs = recorded_inputs(clients)
    handle(
        IMAGE,
        trigger_settings(),
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
    expect_registry(clients, {"web": "golden"})
    clients.images.add_response(
        "get_image", image_of(), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    clients.executions.add_client_error(
        "start_execution", service_error_code="ExecutionAlreadyExists", http_status_code=400
    )
    result = handle(
        IMAGE,
        trigger_settings(),
        clients.imagebuilder,
        clients.stepfunctions,
        clients.ssm,
    )
    assert result == {"started": [], "duplicates": ["web"], "refused": None}


def test_a_requested_release_starts_for_its_fleet(clients: Clients) -> None:
    expect_fleet_read(clients, "web")
    expect_start(clients, "web", REQUESTED["id"])
    result = handle(
        REQUESTED, trigger_settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result["started"] == ["web"]


def test_a_requested_release_s_trigger_says_who_asked_and_why(clients: Clients) -> None:
    # (`phoenix release web --ami ... --reason hotfix` puts such a request)
    expect_fleet_read(clients, "web")
    expect_start(clients, "web", REQUESTED["id"])
    inputs = recorded_inputs(clients)
    request = _changed(REQUESTED, lambda e: e["detail"].update(reason="hotfix 2.4.1"))
    handle(request, trigger_settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm)
    who = REQUESTED["detail"]["requested_by"]
    assert [i["trigger"] for i in inputs] == [f"requested by {who}: hotfix 2.4.1"]


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
    "bad AMI in a request": _changed(REQUESTED, lambda e: e["detail"].update(ami="ubuntu")),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_bad_or_foreign_events_are_refused_without_any_aws_call(
    case: str, clients: Clients
) -> None:
    # The stubbers have no responses queued: any call at all would fail the test.
    result = handle(
        REFUSED[case], trigger_settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result["started"] == []
    assert result["refused"]


def test_a_request_for_a_fleet_the_registry_does_not_hold_is_refused(clients: Clients) -> None:
    expect_fleet_read(clients, "nosuch", pipeline=None)
    unknown = _changed(REQUESTED, lambda e: e["detail"].update(fleet="nosuch"))
    result = handle(
        unknown, trigger_settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result == {"started": [], "duplicates": [], "refused": "no fleet 'nosuch' in sandbox"}


def test_an_image_no_fleet_subscribes_to_is_refused_after_reading_the_registry(
    clients: Clients,
) -> None:
    expect_registry(clients, {"db": "other"})
    result = handle(
        IMAGE, trigger_settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result["refused"] == "no fleet releases the images of 'phoenix-sandbox-golden'"


def test_the_registry_is_read_a_page_of_ten_at_a_time(clients: Clients) -> None:
    fleets = {f"web-{number:02}": "golden" for number in range(23)}
    expect_registry(clients, fleets)
    clients.images.add_response(
        "get_image", image_of(), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    for fleet in sorted(fleets):
        expect_start(clients, fleet, IMAGE["id"])
    result = handle(
        IMAGE, trigger_settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result["started"] == sorted(fleets)


def test_an_image_without_an_ami_in_this_region_is_refused(clients: Clients) -> None:
    expect_registry(clients)
    clients.images.add_response(
        "get_image", image_of(region="eu-west-1"), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    result = handle(
        IMAGE, trigger_settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert result["refused"] == f"image {IMAGE['resources'][0]!r} has no AMI in us-east-1"


def test_an_image_image_builder_does_not_know_is_refused(clients: Clients) -> None:
    expect_registry(clients)
    clients.images.add_client_error(
        "get_image", service_error_code="ResourceNotFoundException", http_status_code=404
    )
    result = handle(
        IMAGE, trigger_settings(), clients.imagebuilder, clients.stepfunctions, clients.ssm
    )
    assert "has no image" in str(result["refused"])


# A disaster recovery region's trigger: images are baked in the primary (us-east-1).
DR = {"AWS_REGION": "us-west-2", "PHOENIX_IMAGE_REGION": "us-east-1"}
DR_AMI = "ami-0123456789abcdef0"


def test_a_dr_trigger_releases_its_own_regions_copy_of_a_primary_image(
    clients: Clients,
) -> None:
    expect_registry(clients, {"web": "golden"})
    clients.images.add_response(
        "get_image", image_of(us_west_2=DR_AMI), {"imageBuildVersionArn": IMAGE["resources"][0]}
    )
    clients.executions.add_response(
        "start_execution",
        {"executionArn": f"{MACHINE}:web", "startDate": "2026-11-25T09:00:00Z"},
        {"stateMachineArn": MACHINE, "name": f"web-{IMAGE['id']}", "input": ANY},
    )
    inputs = recorded_inputs(clients)
    settings = trigger_settings(more=DR)
    result = handle(IMAGE, settings, clients.imagebuilder, clients.stepfunctions, clients.ssm)
    assert result["started"] == ["web"]
    assert inputs[0]["ami"] == DR_AMI


def test_an_image_baked_in_another_region_is_refused_without_any_aws_call(
    clients: Clients,
) -> None:
    elsewhere = _changed(
        IMAGE, lambda e: e.update(resources=[e["resources"][0].replace("us-east-1", "eu-west-1")])
    )
    result = handle(
        elsewhere,
        trigger_settings(more=DR),
        clients.imagebuilder,
        clients.stepfunctions,
        clients.ssm,
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
    for name, value in trigger_environment(more=DR | credentials).items():
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
