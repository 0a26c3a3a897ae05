"""The embedded AWS with the real sandbox templates deployed by the real CDK CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto.awslambda.models import lambda_backends

from app import CONFIG_DIR
from local import destinations, eventbridge
from local.embedded import ACCOUNT, EmbeddedAws
from phoenix.release.runtime.models import FleetSpec
from tests.local.sandbox_world import groups_of, shift_traffic, weights_of

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as aws:
        aws.deploy("sandbox", outdir=tmp_path_factory.mktemp("cdk.out.embedded"))
        yield aws


@pytest.fixture(autouse=True)
def _releases_settle(sandbox: EmbeddedAws) -> Iterator[None]:
    """A release a test starts runs in the background; each test ends when it has."""
    yield
    sandbox.settle()


def test_every_stack_is_complete(sandbox: EmbeddedAws) -> None:
    stacks = sandbox.client("cloudformation").describe_stacks()["Stacks"]
    statuses = {s["StackName"]: s["StackStatus"] for s in stacks}
    assert statuses["phoenix-sandbox"] == "CREATE_COMPLETE"
    assert statuses["phoenix-sandbox-state"] == "CREATE_COMPLETE"


def test_status_finds_the_server_by_aws_endpoint_url_alone(sandbox: EmbeddedAws) -> None:
    # Given a shell where the only AWS setting is the SDKs' endpoint variable (this
    # server's port is a free one, not status's default)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment["AWS_ENDPOINT_URL"] = sandbox.endpoint
    # When `python -m local status` runs there without --port, then it reaches the server
    status = subprocess.run(
        [sys.executable, "-m", "local", "status"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "fleet web: http://" in status
    assert "phoenix-sandbox-web-blue: min 2 desired 2 max 4" in status


def test_blue_serves_at_its_minimum_from_the_release_pointer_and_green_waits(
    sandbox: EmbeddedAws,
) -> None:
    groups = groups_of(sandbox)
    blue, green = groups["phoenix-sandbox-web-blue"], groups["phoenix-sandbox-web-green"]
    assert (blue["MinSize"], blue["DesiredCapacity"], len(blue["Instances"])) == (2, 2, 2)
    assert (green["MinSize"], green["DesiredCapacity"]) == (0, 0)
    pointer = sandbox.client("ssm").get_parameter(Name="/phoenix/sandbox/web/ami")
    instances = sandbox.client("ec2").describe_instances(
        InstanceIds=[i["InstanceId"] for i in blue["Instances"]]
    )
    images = {i["ImageId"] for r in instances["Reservations"] for i in r["Instances"]}
    assert images == {pointer["Parameter"]["Value"]}
    assert weights_of(sandbox) == {"blue": 100, "green": 0}


def test_the_registry_holds_web_resolved_and_an_unknown_fleet_ends_its_execution(
    sandbox: EmbeddedAws,
) -> None:
    value = sandbox.client("ssm").get_parameter(Name="/phoenix-fleets/sandbox/web")
    spec = FleetSpec.model_validate_json(value["Parameter"]["Value"])
    assert spec.slots["blue"].group == "phoenix-sandbox-web-blue"
    stepfunctions = sandbox.client("stepfunctions")
    (machine,) = stepfunctions.list_state_machines()["stateMachines"]
    request = {"environment": "sandbox", "fleet": "nosuch", "ami": "ami-0123456789abcdef0"}
    started = stepfunctions.start_execution(
        stateMachineArn=machine["stateMachineArn"],
        name="nosuch-probe",
        input=json.dumps(request | {"trigger": "t"}),
    )
    sandbox.settle()
    ended = stepfunctions.describe_execution(executionArn=started["executionArn"])
    assert (ended["status"], ended.get("error")) == ("FAILED", "UnknownFleet")


def test_the_alarms_exist_by_their_contract_names(sandbox: EmbeddedAws) -> None:
    names = {a["AlarmName"] for a in sandbox.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    for scope in ("web", "web-blue", "web-green"):
        for what in ("5xx-rate", "p99-latency", "unhealthy-hosts"):
            assert f"phoenix-sandbox-{scope}-{what}" in names


def _release_inputs(aws: EmbeddedAws) -> dict[str, dict[str, Any]]:
    """Every release execution's input, by execution ARN."""
    stepfunctions = aws.client("stepfunctions")
    (machine,) = [
        m["stateMachineArn"]
        for m in stepfunctions.list_state_machines()["stateMachines"]
        if m["name"] == "phoenix-sandbox-release"
    ]
    executions = stepfunctions.list_executions(stateMachineArn=machine)["executions"]
    return {
        e["executionArn"]: json.loads(
            stepfunctions.describe_execution(executionArn=e["executionArn"])["input"]
        )
        for e in executions
    }


def _new_releases(aws: EmbeddedAws, before: dict[str, Any]) -> list[dict[str, Any]]:
    return [value for arn, value in _release_inputs(aws).items() if arn not in before]


def test_a_baked_image_starts_one_release_per_subscribed_fleet(sandbox: EmbeddedAws) -> None:
    # Given nothing released yet
    before = _release_inputs(sandbox)

    # When an image is baked (Image Builder publishes its AVAILABLE event)
    baked = sandbox.bake(version="1.1.0")

    # Then the trigger started the release of its AMI to the sandbox's one fleet
    started = _new_releases(sandbox, before)
    assert [(s["fleet"], s["ami"], s["image"], s["trigger"]) for s in started] == [
        ("web", baked.ami, baked.arn, "image-available")
    ]


def test_put_events_starts_releases_only_for_this_environments_available_images(
    sandbox: EmbeddedAws,
) -> None:
    # Given a baked image, and the sample AVAILABLE event pointed at it, plus two to ignore
    baked = sandbox.bake(version="1.2.0")
    sample = json.loads(
        (REPO / "tests" / "events" / "imagebuilder_image_available.json").read_text()
    )
    other_environment = baked.arn.replace("phoenix-sandbox-golden", "phoenix-production-golden")
    entries = [
        (baked.arn, {"status": "AVAILABLE"}),
        (baked.arn, {"status": "BUILDING"}),
        (other_environment, {"status": "AVAILABLE"}),
    ]
    before = _release_inputs(sandbox)

    # When they are put on the default bus
    response = sandbox.client("events").put_events(
        Entries=[
            {
                "Source": sample["source"],
                "DetailType": sample["detail-type"],
                "Resources": [resource],
                "Detail": json.dumps({**sample["detail"], "state": state}),
            }
            for resource, state in entries
        ]
    )
    assert response["FailedEntryCount"] == 0
    sandbox.drain()

    # Then exactly one release started, for the AVAILABLE image of this environment
    started = _new_releases(sandbox, before)
    assert [(s["fleet"], s["ami"]) for s in started] == [("web", baked.ami)]


def test_the_same_event_delivered_twice_starts_one_release(sandbox: EmbeddedAws) -> None:
    baked = sandbox.bake(version="1.3.0")
    event = json.loads(
        (REPO / "tests" / "events" / "imagebuilder_image_available.json").read_text()
    )
    event |= {"id": "duplicate-delivery-probe", "resources": [baked.arn]}
    lambda_client = sandbox.client("lambda")
    (trigger,) = [
        f["FunctionName"]
        for f in lambda_client.list_functions()["Functions"]
        if f["Handler"] == "phoenix.release.handlers.trigger.lambda_handler"
    ]

    def deliver() -> dict[str, Any]:
        payload = lambda_client.invoke(FunctionName=trigger, Payload=json.dumps(event).encode())
        result: dict[str, Any] = json.loads(payload["Payload"].read())
        return result

    # When it is delivered twice while its release runs, and again once it has ended
    while_running = [deliver(), deliver()]
    sandbox.settle()
    after = deliver()

    # Then one execution exists: StartExecution is idempotent for a running one (same
    # name and input), and refuses the name once the execution has ended
    assert [r["refused"] for r in while_running] == [None, None]
    assert after == {"started": [], "duplicates": ["web"], "refused": None}
    stepfunctions = sandbox.client("stepfunctions")
    (machine,) = [
        m["stateMachineArn"]
        for m in stepfunctions.list_state_machines()["stateMachines"]
        if m["name"] == "phoenix-sandbox-release"
    ]
    names = [
        e["name"] for e in stepfunctions.list_executions(stateMachineArn=machine)["executions"]
    ]
    assert names.count("web-duplicate-delivery-probe") == 1


def test_the_default_security_group_has_no_rules(sandbox: EmbeddedAws) -> None:
    ec2 = sandbox.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.0.0.0/16"]}])["Vpcs"]
    (default,) = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]
    assert default["IpPermissions"] == []
    assert default["IpPermissionsEgress"] == []


def test_a_later_deploy_leaves_what_a_release_set(sandbox: EmbeddedAws, tmp_path: Path) -> None:
    # Given a release of a new image that ended (the controller moved traffic to the
    # other slot on a new launch template version and wrote its parameters)
    before = groups_of(sandbox)
    baked = sandbox.bake(version="4.0.0")
    sandbox.settle()
    released = groups_of(sandbox)
    weights = weights_of(sandbox)
    active = max(weights, key=lambda slot: weights[slot])
    group = released[f"phoenix-sandbox-web-{active}"]
    assert (
        group["LaunchTemplate"]["Version"]
        != before[group["AutoScalingGroupName"]]["LaunchTemplate"]["Version"]
    )
    ssm = sandbox.client("ssm")
    assert ssm.get_parameter(Name="/phoenix/sandbox/web/ami")["Parameter"]["Value"] == baked.ami

    # When the sandbox is deployed again with its launch template and groups changed
    # (seen as the deploy ends: its end starts a release of what it changed)
    config = yaml.safe_load((CONFIG_DIR / "sandbox.yaml").read_text())
    config["fleets"][0] |= {"instance_type": "t4g.medium", "capacity": {"min": 3, "max": 6}}
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(config))
    rules = sandbox.client("events").list_rules(NamePrefix="phoenix-sandbox-ReleaseDeployed")
    (rule,) = rules["Rules"]
    seen: dict[str, Any] = {}
    stop = eventbridge.tap(
        rule["Name"], lambda _: seen.update(groups=groups_of(sandbox), weights=weights_of(sandbox))
    )
    try:
        sandbox.deploy("sandbox", outdir=tmp_path / "cdk.out", config_dir=tmp_path)
    finally:
        stop()

    # Then the deploy changed what it owns and left what the release set
    groups = seen["groups"]
    for name, each in released.items():
        assert groups[name]["MaxSize"] == 6
        assert groups[name]["MinSize"] == each["MinSize"]  # not the config's new 3
        assert groups[name]["LaunchTemplate"]["Version"] == each["LaunchTemplate"]["Version"]
    assert seen["weights"] == weights
    template = group["LaunchTemplate"]["LaunchTemplateId"]
    ec2 = sandbox.client("ec2")
    latest = ec2.describe_launch_templates(LaunchTemplateIds=[template])["LaunchTemplates"][0]
    # the deploy's new shape is a new version the release's slot does not use
    assert latest["LatestVersionNumber"] > int(group["LaunchTemplate"]["Version"])
    assert ssm.get_parameter(Name="/phoenix/sandbox/web/ami")["Parameter"]["Value"] == baked.ami

    # ...and the release it started put the new shape into service on the same AMI, with
    # the release's capacity, not the config's
    sandbox.settle()
    after = groups_of(sandbox)
    now = weights_of(sandbox)
    serving = after[f"phoenix-sandbox-web-{max(now, key=lambda slot: now[slot])}"]
    assert now != weights
    assert serving["MinSize"] == group["MinSize"]
    reservations = ec2.describe_instances(
        InstanceIds=[i["InstanceId"] for i in serving["Instances"]]
    )["Reservations"]
    launched = {(i["InstanceType"], i["ImageId"]) for r in reservations for i in r["Instances"]}
    assert launched == {("t4g.medium", baked.ami)}
    assert ssm.get_parameter(Name="/phoenix/sandbox/web/ami")["Parameter"]["Value"] == baked.ami


def test_an_erroring_ami_in_a_slot_taking_traffic_sets_off_its_alarms(
    sandbox: EmbeddedAws,
) -> None:
    # Given an AMI that passes health checks but answers half its requests with 5xx, on
    # the idle slot scaled to two instances (the idle slot has no traffic)
    ec2, autoscaling = sandbox.client("ec2"), sandbox.client("autoscaling")
    erroring = sandbox.bake(health="erroring", version="2.0.0", pipeline="scratch").ami
    weights = weights_of(sandbox)
    idle, active = sorted(weights, key=lambda slot: weights[slot])
    group = groups_of(sandbox)[f"phoenix-sandbox-web-{idle}"]
    template = group["LaunchTemplate"]["LaunchTemplateId"]
    version = str(
        ec2.create_launch_template_version(
            LaunchTemplateId=template, SourceVersion="1", LaunchTemplateData={"ImageId": erroring}
        )["LaunchTemplateVersion"]["VersionNumber"]
    )
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=group["AutoScalingGroupName"],
        LaunchTemplate={"LaunchTemplateId": template, "Version": version},
        MinSize=2,
        DesiredCapacity=2,
    )
    sandbox.advance(120)
    states = {
        a["AlarmName"]: a["StateValue"]
        for a in sandbox.client("cloudwatch").describe_alarms()["MetricAlarms"]
    }
    assert states[f"phoenix-sandbox-web-{idle}-5xx-rate"] == "OK"  # no traffic yet
    assert states[f"phoenix-sandbox-web-{idle}-unhealthy-hosts"] == "OK"  # checks pass

    # When a quarter of the traffic goes to it for the alarm's evaluation periods
    shift_traffic(sandbox, {idle: 25, active: 75})
    sandbox.advance(120)

    # Then the deployed alarms read it: its error rate and the fleet's, not the other's
    states = {
        a["AlarmName"]: a["StateValue"]
        for a in sandbox.client("cloudwatch").describe_alarms()["MetricAlarms"]
    }
    assert states[f"phoenix-sandbox-web-{idle}-5xx-rate"] == "ALARM"
    assert states["phoenix-sandbox-web-5xx-rate"] == "ALARM"
    assert states[f"phoenix-sandbox-web-{active}-5xx-rate"] == "OK"
    assert states[f"phoenix-sandbox-web-{active}-unhealthy-hosts"] == "OK"
    status = sandbox.status()
    assert f"AMIs {erroring} x2" in status
    assert "alarms in ALARM: phoenix-sandbox-web-5xx-rate" in status


def test_each_function_a_rule_invokes_may_send_its_last_failure_to_the_queue(
    sandbox: EmbeddedAws,
) -> None:
    # Given the stack's queue of undelivered events and the deployed functions
    sqs, lambdas = sandbox.client("sqs"), sandbox.client("lambda")
    (queue,) = sqs.list_queues(QueueNamePrefix="phoenix-sandbox-Undelivered")["QueueUrls"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sent = []
    for name in [f["FunctionName"] for f in lambdas.list_functions()["Functions"]]:
        with contextlib.suppress(lambdas.exceptions.ResourceNotFoundException):
            config = lambdas.get_function_event_invoke_config(FunctionName=name)
            # Then its on-failure destination is the queue, and its role as deployed may
            # send there (SendMessage, and the queue key's GenerateDataKey)
            assert config["DestinationConfig"]["OnFailure"]["Destination"] == arn["QueueArn"]
            deployed = lambda_backends[ACCOUNT][sandbox.region].get_function(name)
            assert destinations.send_on_failure(deployed, {"function": name}), name
            sent.append(name)
    # the trigger, rollback, refresh-event receiver, cleanup, drift check, vulnerabilities,
    # rollback drills
    assert len(sent) == 7, sent
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["function"] for m in messages) == sorted(sent)
