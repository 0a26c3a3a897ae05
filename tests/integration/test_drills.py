"""Rollback drills in the embedded AWS (phoenix/drills/): the drill function, run as the
environment's schedule runs it, launches one instance of each blue_green and canary
fleet's rollback target in its idle slot (weight 0: no traffic), passes once it is healthy
in the slot's target group and empties the slot again; a rollback target deregistered by
hand fails its fleet's drill at once, with `Rollback Drill Failed`; a release that meets a
drill's lock waits for it and then runs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.embedded import EmbeddedAws
from local.fleet_view import FleetView, ledger_item, release_item, states_entered
from tests.integration.fleet_view import subscribed

RUN = {"drill": "run", "environment": "sandbox"}


@pytest.fixture(scope="module")
def drill_events(aws: EmbeddedAws) -> Iterator[str]:
    pattern = {
        "source": ["phoenix"],
        "detail-type": ["Rollback Drill Passed", "Rollback Drill Failed"],
    }
    with subscribed(aws, "drill-events", pattern) as url:
        yield url


def _run(aws: EmbeddedAws) -> dict[str, list[str]]:
    """One run of the drill function, invoked with the schedule's input."""
    lam = aws.client("lambda")
    (name,) = [
        f["FunctionName"]
        for f in lam.list_functions()["Functions"]
        if "Drills" in f["FunctionName"]
    ]
    response = lam.invoke(FunctionName=name, Payload=json.dumps(RUN).encode())
    assert "FunctionError" not in response, response["Payload"].read()
    result: dict[str, Any] = json.loads(response["Payload"].read())
    assert result["action"] == "ran", result
    return dict(result["drills"])


def _received(aws: EmbeddedAws, url: str) -> dict[str, dict[str, Any]]:
    aws.drain()
    found: dict[str, dict[str, Any]] = {}
    sqs = aws.client("sqs")
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            event = json.loads(message["Body"])
            found[event["detail"]["fleet"]] = {"type": event["detail-type"], **event["detail"]}
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def _waiting_for_the_drill(aws: EmbeddedAws, before: set[str]) -> str:
    """The new release's execution, once it waits for the drill's lock (DrillLockWait)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for arn in set(aws.executions()) - before:
            if "DrillLockWait" in states_entered(aws, arn):
                return arn
        time.sleep(0.2)
    raise AssertionError("no release waited for the drill's lock")


def _idle(view: FleetView) -> str:
    return min(view.weights, key=lambda slot: view.weights[slot])


def _release(aws: EmbeddedAws, fleet: str, version: str) -> None:
    ami = aws.bake(pipeline="scratch", version=version).ami
    execution = aws.request_release(fleet, ami, requested_by="tests")
    assert execution["status"] == "SUCCEEDED", release_item(aws, fleet, execution["name"])


def _target(view: FleetView) -> str:
    return str(view.fleet_item.get("previous_good_ami", {}).get("S", ""))


def test_a_drill_proves_the_idle_slot_and_a_deregistered_target_fails_at_once(
    aws: EmbeddedAws, drill_events: str
) -> None:
    # Given api and worker with an AMI to roll back to (web paused: no drill of its own),
    # and worker's rollback target deregistered by hand
    aws.put("Releases Paused", {"fleet": "web", "requested_by": "tests", "reason": "drills"})
    aws.advance(300)
    if not _target(FleetView.read(aws, "api")):
        _release(aws, "api", "22.0.0")
    api = FleetView.read(aws, "api")
    for n in range(2):  # until worker's target is its own (the first AMIs are shared)
        if _target(FleetView.read(aws, "worker")) not in {"", _target(api), api.pointer}:
            break
        _release(aws, "worker", f"22.1.{n}")
    before = {"api": api, "worker": FleetView.read(aws, "worker")}
    gone = before["worker"].fleet_item["previous_good_ami"]["S"]
    aws.client("ec2").deregister_image(ImageId=gone)

    # When the drill function runs
    first = _run(aws)

    # Then worker's drill fails at once, naming the AMI, api's starts, web has none
    assert first["worker"] == ["failed", f"the rollback target {gone} is deregistered"]
    assert first["api"][0] == "started", first
    assert "web" not in first
    failed = _received(aws, drill_events)["worker"]
    assert (failed["type"], failed["outcome"], failed["ami"]) == (
        "Rollback Drill Failed",
        "failed",
        gone,
    )
    # and api's drill holds the fleet, with one instance in the idle slot at weight 0
    api, idle = FleetView.read(aws, "api"), _idle(before["api"])
    assert api.weights == before["api"].weights
    assert api.desired_by_slot[idle] == 1
    assert api.fleet_item["lock_owner"]["S"].startswith("drill-")

    # When a release is requested for api meanwhile, it waits for the drill
    next_ami = aws.bake(pipeline="scratch", version="21.0.0").ami
    started = set(aws.executions())
    aws.start_release("api", next_ami, requested_by="tests")
    waiting = _waiting_for_the_drill(aws, started)
    aws.advance(300)  # the drill's instances pass their health checks
    second = _run(aws)

    # Then the drill passes, in the ledger, and gives the fleet back
    assert second == {"api": ["passed", ""]}
    passed = _received(aws, drill_events)["api"]
    target = before["api"].fleet_item["previous_good_ami"]["S"]
    assert (passed["type"], passed["ami"]) == ("Rollback Drill Passed", target)
    record = ledger_item(aws, "FLEET#api", f"DRILL#{passed['started_at']}")
    assert record["outcome"]["S"] == "passed"
    assert FleetView.read(aws, "api").desired_by_slot[idle] == 0

    # and api's release, which waited for the drill's lock, then ran
    aws.settle()
    execution = aws.executions()[waiting]
    assert execution["status"] == "SUCCEEDED", release_item(aws, "api", execution["name"])
    api = FleetView.read(aws, "api")
    assert api.pointer == next_ami
    assert api.fleet_item["last_drill_outcome"]["S"] == "passed"
    aws.put("Releases Resumed", {"fleet": "web", "requested_by": "tests", "reason": ""})


def test_a_rolling_fleet_drills_with_a_temporary_instance_an_hour_after_a_failed_drill(
    aws: EmbeddedAws, drill_events: str
) -> None:
    # Given worker's way back mended after its failed drill (a release makes the AMI it
    # replaces, which is registered, its rollback target), an hour on
    aws.put("Releases Paused", {"fleet": "web", "requested_by": "tests", "reason": "drills"})
    _release(aws, "worker", "23.0.0")
    target = _target(FleetView.read(aws, "worker"))
    aws.advance(3600)

    # When the drill function runs
    first = _run(aws)

    # Then worker's drill launches one instance of its target, outside its group
    assert first["worker"][0] == "started", first
    drill = FleetView.read(aws, "worker").fleet_item["drill"]["M"]
    instance = drill["instance"]["S"]
    (reservation,) = aws.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"]
    launched = reservation["Instances"][0]
    assert launched["ImageId"] == target
    assert {"Key": "phoenix:drill", "Value": drill["id"]["S"]} in launched["Tags"]
    (group,) = aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["phoenix-sandbox-worker-blue"]
    )["AutoScalingGroups"]
    assert instance not in {i["InstanceId"] for i in group["Instances"]}

    # and the next run passes it on its status checks and terminates the instance
    assert _run(aws)["worker"] == ["passed", ""]
    assert _received(aws, drill_events)["worker"]["type"] == "Rollback Drill Passed"
    (reservation,) = aws.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"]
    assert reservation["Instances"][0]["State"]["Name"] in {"shutting-down", "terminated"}
    assert "lock_owner" not in FleetView.read(aws, "worker").fleet_item
    aws.put("Releases Resumed", {"fleet": "web", "requested_by": "tests", "reason": ""})
