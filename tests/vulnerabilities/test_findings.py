"""Inspector findings on serving instances (phoenix/vulnerabilities/runtime/finding.py),
from AWS's sample `Inspector2 Finding` event (tests/events/inspector2_finding_ec2.json), in
moto: what is reported once, and what is refused with nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from phoenix.kernel.clients import Clients
from phoenix.vulnerabilities.handlers.finding import handle
from phoenix.vulnerabilities.runtime.finding import VulnerabilitySettings
from tests.ledger_table import create_ledger_table
from tests.sample_events import sample_event

REGION = "us-east-1"
SETTINGS = VulnerabilitySettings(
    environment="sandbox", service_name="phoenix-vulnerabilities", table_name="ledger",
    region=REGION,
)  # fmt: skip


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        dynamodb, ec2 = boto3.client("dynamodb"), boto3.client("ec2")
        create_ledger_table(dynamodb, "ledger")
        spec = {"name": "web", "cve_severity": "HIGH"}
        boto3.client("ssm").put_parameter(
            Name="/phoenix-fleets/sandbox/web", Value=json.dumps(spec), Type="String"
        )
        ami = ec2.register_image(Name="web", RootDeviceName="/dev/xvda")["ImageId"]
        instances = {}
        for name, tag in (("ours", "sandbox/web"), ("theirs", "production/web")):
            (instance,) = ec2.run_instances(
                ImageId=ami, MinCount=1, MaxCount=1,
                TagSpecifications=[{"ResourceType": "instance",
                                    "Tags": [{"Key": "phoenix:fleet", "Value": tag}]}],
            )["Instances"]  # fmt: skip
            instances[name] = instance["InstanceId"]
        sqs, events = boto3.client("sqs"), boto3.client("events")
        url = sqs.create_queue(QueueName="out")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        events.put_rule(Name="out", EventPattern=json.dumps({"source": ["phoenix"]}))
        events.put_targets(Rule="out", Targets=[{"Id": "q", "Arn": arn["QueueArn"]}])
        yield {"ami": ami, "url": url, **instances}


def _finding(instance: str, *, severity: str = "HIGH", status: str = "ACTIVE") -> dict[str, Any]:
    event = sample_event("inspector2_finding_ec2")
    event["detail"] |= {"severity": severity, "status": status}
    event["detail"]["resources"][0]["id"] = instance
    return event


def _out(world: dict[str, Any]) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=world["url"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def _kept() -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName="ledger")["Items"]
    return [i for i in items if i["sk"]["S"].startswith("CVE#")]


def test_an_active_finding_on_a_fleet_s_instance_is_reported_once(world: dict[str, Any]) -> None:
    event = _finding(world["ours"])
    assert handle(event, SETTINGS, Clients(REGION))["action"] == "reported"
    (sent,) = _out(world)
    assert sent["detail-type"] == "Fleet Vulnerable"
    assert (sent["detail"]["fleet"], sent["detail"]["ami"]) == ("web", world["ami"])
    assert sent["detail"]["vulnerability"] == "CVE-2024-29069"
    (kept,) = _kept()
    assert kept["sk"]["S"] == f"CVE#{world['ami']}#CVE-2024-29069"
    # Inspector sends the finding again on each update: known, nothing sent again
    assert handle(event, SETTINGS, Clients(REGION))["action"] == "known"
    assert _out(world) == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({}, "finding is CLOSED"),  # AWS's sample as it is
        ({"status": "ACTIVE", "severity": "MEDIUM"}, "below web's cve_severity HIGH"),
        ({"status": "ACTIVE", "instance": "theirs"}, "is of no fleet of sandbox"),
        ({"status": "ACTIVE", "instance": "i-0123456789abcdef0"}, "no instance"),
        ({"status": "ACTIVE", "resources": []}, "resources"),
        ({"source": "aws.guardduty"}, "source"),
    ],
)
def test_what_concerns_no_fleet_here_is_refused_and_changes_nothing(
    world: dict[str, Any], change: dict[str, Any], why: str
) -> None:
    event = sample_event("inspector2_finding_ec2")
    named = change.get("instance", "ours")
    event["detail"]["resources"][0]["id"] = world.get(named, named)
    for key in ("status", "severity", "resources"):
        if key in change:
            event["detail"][key] = change[key]
    if "source" in change:
        event["source"] = change["source"]
    answer = handle(event, SETTINGS, Clients(REGION))
    assert answer["action"] == "refused"
    assert why in answer["reason"]
    assert _out(world) == []
    assert _kept() == []


def test_a_fleet_that_rebuilds_on_a_cve_starts_its_pipeline_once(world: dict[str, Any]) -> None:
    # Given web set to rebuild on a CVE, its pipeline this environment's to start
    spec = {
        "name": "web",
        "cve_severity": "HIGH",
        "rebuild_on_cve": True,
        "image_pipeline": "golden",
    }
    boto3.client("ssm").put_parameter(
        Name="/phoenix-fleets/sandbox/web", Value=json.dumps(spec), Type="String", Overwrite=True
    )
    pipeline = "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/phoenix-sandbox-golden"
    settings = SETTINGS.model_copy(update={"image_pipelines": {"golden": pipeline}})
    aws = Clients(REGION)
    imagebuilder = boto3.client("imagebuilder", region_name=REGION)
    built = f"{pipeline.replace('image-pipeline', 'image')}/1.0.0/2"
    with Stubber(imagebuilder) as stubber:
        stubber.add_response(
            "start_image_pipeline_execution",
            {"requestId": "r", "clientToken": "t", "imageBuildVersionArn": built},
            {"imagePipelineArn": pipeline, "clientToken": ANY},
        )
        aws.provide("imagebuilder", imagebuilder)
        # When the finding comes, and again
        assert handle(_finding(world["ours"]), settings, aws)["action"] == "reported"
        assert handle(_finding(world["ours"]), settings, aws)["action"] == "known"
        # Then the pipeline was started once (no call left over, none unexpected)
        stubber.assert_no_pending_responses()
    (sent,) = _out(world)
    assert sent["detail"]["action"] == f"rebuild started: {built}"


def test_the_settings_read_back_what_the_infrastructure_wrote() -> None:
    pipelines = {"golden": "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/x"}
    written = SETTINGS.model_copy(update={"image_pipelines": pipelines}).to_environment()
    read = VulnerabilitySettings.from_environ(written | {"AWS_REGION": REGION})
    assert read.image_pipelines == pipelines
