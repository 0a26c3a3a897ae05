"""The drift check in the embedded AWS: the environment's schedule runs it on the simulated
clock (local/scheduler.py); drift made by hand (an extra instance on another AMI, a group
pointed at another launch template version) is reported, and a fleet set to remediate
gets a release of its pointer AMI through the normal path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local import scheduler
from local.embedded import EmbeddedAws
from local.fleet_view import FleetView, ledger_item
from phoenix.kernel.names import registered_fleet
from tests.integration.fleet_view import subscribed

HOUR = 3600


@pytest.fixture(scope="module")
def reports(aws: EmbeddedAws) -> Iterator[str]:
    """A queue that receives every `Fleet Drift Detected` event."""
    pattern = {"source": ["phoenix"], "detail-type": ["Fleet Drift Detected"]}
    with subscribed(aws, "drift-reports", pattern) as url:
        yield url


def _reported(aws: EmbeddedAws, url: str) -> dict[str, list[dict[str, Any]]]:
    """The drift events received since the last read, by fleet, in order."""
    found: dict[str, list[dict[str, Any]]] = {}
    while (
        messages := aws.client("sqs")
        .receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        .get("Messages", [])
    ):
        for message in messages:
            detail = json.loads(message["Body"])["detail"]
            found.setdefault(detail["fleet"], []).append(detail)
            aws.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def _next_check(aws: EmbeddedAws) -> None:
    """Let the schedule run the check once more (it runs every hour)."""
    before = len(scheduler.runs)
    aws.advance(HOUR)
    aws.settle()
    assert len(scheduler.runs) > before


def _active(aws: EmbeddedAws, fleet: str) -> str:
    weights = FleetView.read(aws, fleet).weights
    return max(weights, key=lambda slot: weights[slot])


def test_the_schedule_runs_the_check_and_finds_no_drift_in_a_fleet_left_as_released(
    aws: EmbeddedAws, reports: str
) -> None:
    _next_check(aws)
    assert _reported(aws, reports) == {}
    assert scheduler.refused == []


def test_an_extra_instance_and_an_edited_group_are_reported_and_left_alone(
    aws: EmbeddedAws, reports: str
) -> None:
    # Given an instance launched by hand on another AMI into web's serving group, and
    # api's serving group pointed at another launch template version in the console
    web_group, api_group = (f"phoenix-sandbox-{f}-{_active(aws, f)}" for f in ("web", "api"))
    other = aws.bake(pipeline="scratch", version="13.0.0").ami
    autoscaling, ec2 = aws.client("autoscaling"), aws.client("ec2")
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[web_group])[
        "AutoScalingGroups"
    ]
    subnet = group["VPCZoneIdentifier"].split(",")[0]
    (rogue,) = ec2.run_instances(ImageId=other, MinCount=1, MaxCount=1, SubnetId=subnet)[
        "Instances"
    ]
    autoscaling.attach_instances(InstanceIds=[rogue["InstanceId"]], AutoScalingGroupName=web_group)
    (edited,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[api_group])[
        "AutoScalingGroups"
    ]
    template = edited["LaunchTemplate"]
    by_hand = ec2.create_launch_template_version(
        LaunchTemplateId=template["LaunchTemplateId"],
        SourceVersion=template["Version"],
        LaunchTemplateData={"InstanceType": "t3.large"},
    )["LaunchTemplateVersion"]["VersionNumber"]
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=api_group,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": str(by_hand)},
    )
    executions = set(aws.executions())

    # When the schedule runs the check
    _next_check(aws)

    # Then both are reported, with what was found and what was expected, and nothing
    # else happens (both fleets report only)
    found = {fleet: last for fleet, (*_, last) in _reported(aws, reports).items()}
    assert set(found) == {"web", "api"}
    (extra,) = found["web"]["findings"]
    assert (extra["kind"], extra["found"], extra["resource"]) == (
        "instance AMI", other, rogue["InstanceId"],
    )  # fmt: skip
    assert extra["expected"] == FleetView.read(aws, "web").pointer
    kinds = [f["kind"] for f in found["api"]["findings"]]
    assert kinds == ["launch template version"]
    assert found["api"]["findings"][0]["found"] == str(by_hand)
    assert {found[f]["action"] for f in found} == {"reported"}
    assert set(aws.executions()) == executions


def test_a_fleet_set_to_remediate_gets_a_release_of_its_pointer(
    aws: EmbeddedAws, reports: str
) -> None:
    # Given both fleets still drifted, each in turn configured to remediate (a deploy
    # writes the registry; here its parameter is written as that deploy would)
    ssm = aws.client("ssm")
    specs = {
        fleet: ssm.get_parameter(Name=registered_fleet("sandbox", fleet))["Parameter"]["Value"]
        for fleet in ("web", "api")
    }
    pointers = {fleet: FleetView.read(aws, fleet).pointer for fleet in specs}
    executions = {e["name"] for e in aws.executions().values()}
    # One fleet at a time: the embedded AWS runs one release at a time (docs/rehearsal.md)
    for fleet, spec in specs.items():
        try:
            remediate = json.dumps(json.loads(spec) | {"drift": "remediate"})
            ssm.put_parameter(
                Name=registered_fleet("sandbox", fleet), Value=remediate, Overwrite=True
            )

            # When the schedule runs the check, and the release it asked for ends
            _next_check(aws)
            aws.settle()
            # the first check asked for a release; the checks while it ran left the fleet
            # alone, and a fleet still reporting only was reported
            found = _reported(aws, reports)
            first, *later = found.pop(fleet)
            assert first["action"] == "release of the pointer AMI requested", fleet
            assert {d["action"] for d in later} <= {
                "left: a release holds the fleet", "left: inside a rollback window"
            }  # fmt: skip
            assert {d["action"] for events in found.values() for d in events} <= {"reported"}
            aws.advance(HOUR)  # past the release's rollback window: its old slot retires
            aws.settle()
        finally:
            ssm.put_parameter(Name=registered_fleet("sandbox", fleet), Value=spec, Overwrite=True)
        _reported(aws, reports)  # what the checks meanwhile told of the other fleet

    # Then each fleet was released on its pointer AMI by the drift check, serves only it,
    # and the next check finds nothing
    for fleet in specs:
        view = FleetView.read(aws, fleet)
        assert view.serving_amis == {pointers[fleet]}, view
        assert view.pointer == pointers[fleet]
        last = view.fleet_item["last_release"]["S"]
        assert view.fleet_item["last_outcome"]["S"] == "succeeded", view.fleet_item
        release = ledger_item(aws, f"FLEET#{fleet}", f"RELEASE#{last}")
        assert release["trigger"]["S"].startswith("requested by phoenix drift check: drift: ")
        assert release["to_ami"]["S"] == pointers[fleet]
        drifted = [
            e for e in aws.executions().values()
            if e["name"].startswith(f"{fleet}-") and e["name"] not in executions
            and e["name"] != last
        ]  # fmt: skip
        assert drifted == [], "one release per drift"
    _next_check(aws)
    assert _reported(aws, reports) == {}


def _logical_id(aws: EmbeddedAws, physical: str) -> str:
    resources = aws.client("cloudformation").describe_stack_resources(StackName="phoenix-sandbox")
    (logical,) = [
        r["LogicalResourceId"]
        for r in resources["StackResources"]
        if r.get("PhysicalResourceId") == physical
    ]
    return str(logical)


def test_stack_resources_edited_by_hand_are_reported_and_left_to_a_person(
    aws: EmbeddedAws, reports: str
) -> None:
    # Given api's serving group's maximum raised in the console, and SSH opened to the
    # world on web's load balancer
    autoscaling, ec2 = aws.client("autoscaling"), aws.client("ec2")
    api_group = f"phoenix-sandbox-api-{_active(aws, 'api')}"
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[api_group])[
        "AutoScalingGroups"
    ]
    (listener,) = aws.client("elbv2").describe_listeners(
        ListenerArns=[json.loads(aws.client("ssm").get_parameter(
            Name=registered_fleet("sandbox", "web"))["Parameter"]["Value"])["listener"]]
    )["Listeners"]  # fmt: skip
    (balancer,) = aws.client("elbv2").describe_load_balancers(
        LoadBalancerArns=[listener["LoadBalancerArn"]]
    )["LoadBalancers"]
    (web_sg,) = balancer["SecurityGroups"]
    ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ssm = aws.client("ssm")
    spec = ssm.get_parameter(Name=registered_fleet("sandbox", "api"))["Parameter"]["Value"]
    executions = set(aws.executions())
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=api_group, MaxSize=group["MaxSize"] + 6
    )
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[ssh])
    try:
        # api remediates its drift (a deploy writes the registry; written here as it would)
        remediate = json.dumps(json.loads(spec) | {"drift": "remediate"})
        ssm.put_parameter(Name=registered_fleet("sandbox", "api"), Value=remediate, Overwrite=True)

        # When the schedule runs the check twice: once to start CloudFormation's drift
        # detection, then to read what it found
        _next_check(aws)
        _next_check(aws)

        # Then each fleet's drifted resource is reported, with its template's value, and
        # no release is asked for, not even for api: a release does not change the stack
        found = {fleet: last for fleet, (*_, last) in _reported(aws, reports).items()}
        assert set(found) == {"web", "api"}
        (raised,) = found["api"]["findings"]
        assert (raised["kind"], raised["resource"]) == (
            "stack resource", _logical_id(aws, api_group),
        )  # fmt: skip
        assert raised["found"] == f"/MaxSize {group['MaxSize'] + 6}"
        assert raised["expected"] == f"/MaxSize {group['MaxSize']}"
        assert found["api"]["action"] == "left: a release does not put a stack resource back"
        (opened,) = found["web"]["findings"]
        assert opened["resource"] == _logical_id(aws, web_sg)
        assert opened["found"].startswith("/SecurityGroupIngress/")
        assert '"FromPort": 22' in opened["found"]
        assert found["web"]["action"] == "reported"
        assert set(aws.executions()) == executions
    finally:
        ssm.put_parameter(Name=registered_fleet("sandbox", "api"), Value=spec, Overwrite=True)
        autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=api_group, MaxSize=group["MaxSize"]
        )
        ec2.revoke_security_group_ingress(GroupId=web_sg, IpPermissions=[ssh])

    # And once put back, the detection after finds nothing
    _next_check(aws)
    _reported(aws, reports)
    _next_check(aws)
    assert _reported(aws, reports) == {}
