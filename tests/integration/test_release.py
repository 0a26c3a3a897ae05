"""Releases in the embedded AWS: the real state machine, in moto's interpreter, with the
real handlers, on a fleet of each strategy (tests/integration/config/sandbox.yaml)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.api_calls import CallLog, recording
from local.embedded import EmbeddedAws
from local.faults import failing
from local.fleet_view import FleetView, release_item, states_entered
from phoenix.kernel.names import environment_record
from phoenix.release.spec import STEP_CALLS, step_handler
from tests.integration.conftest import SharedSandbox
from tests.integration.fleet_view import CapacityWatch, request_release, required_capacity

CONFIG = Path(__file__).resolve().parent / "config"
FLEETS = {"canary": "web", "blue_green": "api", "rolling": "worker"}
STEPS = {
    "web": [
        "preflight passed",
        "launch template version created",
        "target slot scaled",
        "new targets healthy",
    ]
    # three steps keep a baseline to judge the canary against; the last serves everything
    + ["canary judged", "health gate passed"] * 3
    + ["health gate passed"]
    + ["pointer moved"],
    "api": [
        "preflight passed",
        "launch template version created",
        "target slot scaled",
        "new targets healthy",
        "pre-traffic tests passed",
        "health gate passed",
        "pointer moved",
    ],
    "worker": [
        "preflight passed",
        "launch template version created",
        "instance refresh started",
        "health gate passed",
        "pointer moved",
    ],
}


@pytest.fixture(scope="module")
def calls() -> Iterator[CallLog]:
    """Every AWS call the handlers make during this module's releases."""
    with recording() as log:
        yield log


@pytest.fixture(scope="module")
def aws(shared_sandbox: SharedSandbox, calls: CallLog) -> EmbeddedAws:
    embedded = shared_sandbox.get()
    calls.clear()  # deploying runs CDK's own custom resources, not phoenix's steps
    return embedded


@pytest.fixture(scope="module", autouse=True)
def people(aws: EmbeddedAws) -> str:
    """A queue subscribed to the environment's topic (raw messages), before any release
    of this module: what a person would read."""
    record = aws.client("ssm").get_parameter(Name=environment_record("sandbox"))
    topic = json.loads(record["Parameter"]["Value"])["topic"]
    sqs = aws.client("sqs")
    url = str(sqs.create_queue(QueueName="people")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    aws.client("sns").subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


@pytest.mark.parametrize("fleet", FLEETS.values())
def test_a_healthy_image_replaces_every_instance_and_takes_all_traffic(
    aws: EmbeddedAws, fleet: str
) -> None:
    # Given an image baked by a pipeline no fleet follows (so only the request releases it)
    baked = aws.bake(pipeline="scratch", version="2.0.0")
    before = FleetView.read(aws, fleet)

    # When its release to the fleet is requested, watching serving capacity all through
    with CapacityWatch(fleet, required_capacity(2, 100)) as watch:
        execution = request_release(aws, fleet, baked.ami)

    # Then every instance serving runs the new AMI, with all the traffic, the pointer
    # moved, each step in the ledger, the lock released and the old slot scaled in
    after = FleetView.read(aws, fleet)
    release = release_item(aws, fleet, execution["name"])
    assert execution["status"] == "SUCCEEDED", release
    if fleet == "worker":  # its refresh paused at 50% and went on to the last checkpoint, 100
        (refresh, *_) = aws.client("autoscaling").describe_instance_refreshes(
            AutoScalingGroupName="phoenix-sandbox-worker-blue"
        )["InstanceRefreshes"]
        assert refresh["Preferences"].get("CheckpointPercentages") == [50, 100]
        assert (refresh["Status"], refresh["PercentageComplete"]) == ("Successful", 100)
    assert after.serving_amis == {baked.ami}
    assert sorted(after.weights.values()) in ([100], [0, 100])
    assert after.pointer == baked.ami != before.pointer
    assert sum(after.desired_by_slot.values()) == 2
    assert (release["outcome"], release["to_ami"]) == ("succeeded", baked.ami)
    assert release["steps"] == STEPS[fleet]
    if fleet == "web":  # each judged step read the custom metric too, and passed it
        metrics = {"5xx rate": "pass", "p99 latency": "pass", "failed checkouts": "pass"}
        assert release["judged"] == [metrics] * 3
    assert "lock_owner" not in after.fleet_item
    assert after.fleet_item["last_good_ami"]["S"] == baked.ami
    assert watch.lowest >= watch.required, watch.seen


@pytest.mark.parametrize(
    ("fleet", "health", "ended"),
    [
        # traffic reaches the bad AMI and its alarm fires: the rollback function stops it
        ("web", "erroring", "ABORTED"),
        # the new slot never gets healthy: its warm-up gate fails, the Catch rolls back
        ("api", "failing", "FAILED"),
        # it passes its health checks, but the pre-traffic hook's smoke test fails it
        # before any traffic moves to it: the Catch rolls back
        ("api", "erroring", "FAILED"),
        ("worker", "failing", "ABORTED"),
        ("worker", "erroring", "ABORTED"),
    ],
)
def test_an_unhealthy_image_is_rolled_back_to_the_last_good_one(
    aws: EmbeddedAws, fleet: str, health: str, ended: str
) -> None:
    # Given the fleet on a good AMI after a few minutes of healthy traffic (an earlier
    # test's rollback leaves alarms that recover only then), and a bad image
    aws.advance(300)
    good = aws.bake(pipeline="scratch", version="3.0.0")
    assert request_release(aws, fleet, good.ami)["status"] == "SUCCEEDED"
    bad = aws.bake(pipeline="scratch", version="3.0.1", health=health)

    # When its release is requested
    with CapacityWatch(fleet, required_capacity(2, 100)) as watch:
        execution = request_release(aws, fleet, bad.ami)

    # Then the fleet serves the good AMI with all the traffic, the release is recorded
    # as rolled back with its reason, the lock is free and nothing is left scaled up
    after = FleetView.read(aws, fleet)
    # (undone by the release's own Catch path: FAILED; by the rollback function on an
    # alarm while in flight: ABORTED, at once, as StopExecution ends a task's wait)
    assert execution["status"] == ended, release_item(aws, fleet, execution["name"])
    assert after.serving_amis == {good.ami}, (after, release_item(aws, fleet, execution["name"]))
    assert after.pointer == good.ami
    assert after.idle_desired == 0
    assert sum(after.desired_by_slot.values()) == 2
    release = release_item(aws, fleet, execution["name"])
    assert release["outcome"] == "rolled back", release
    assert release["reason"]
    assert release["steps"][-1] == "rolled back"
    assert "lock_owner" not in after.fleet_item
    assert watch.lowest >= watch.required, watch.seen
    if (fleet, health) == ("api", "erroring"):
        assert "pre-traffic tests failed" in release["steps"], release
        hook = "pre-traffic hook phoenix-sandbox-smoke-test failed the new instances"
        assert hook in release["reason"], release
        entered = states_entered(aws, execution["executionArn"])
        assert "PreTrafficTests" in entered
        assert "ShiftTraffic" not in entered  # no weight ever moved to the new slot


def test_a_throttled_lambda_step_is_retried_not_rolled_back(aws: EmbeddedAws) -> None:
    # Given Lambda throttling the state machine's first invocation of the deploy function
    # (the rolling fleet's StartRefresh, a waitForTaskToken task)
    deploy = next(
        f["FunctionName"]
        for f in aws.client("lambda").list_functions()["Functions"]
        if f["Handler"] == step_handler("release_deploy")
    )
    baked = aws.bake(pipeline="scratch", version="4.0.0")

    # When a release of a healthy image to the rolling fleet is requested
    with failing("lambda", "Invoke", "TooManyRequestsException", invoking=deploy) as fault:
        execution = request_release(aws, "worker", baked.ami)

    # Then the step was retried (Lambda.TooManyRequestsException) and the release succeeded
    release = release_item(aws, "worker", execution["name"])
    assert fault.served == 1
    assert execution["status"] == "SUCCEEDED", release
    assert release["steps"] == STEPS["worker"]
    assert FleetView.read(aws, "worker").serving_amis == {baked.ami}


def test_a_step_that_fails_is_undone_by_the_release_s_own_rollback(aws: EmbeddedAws) -> None:
    # Given AWS refusing the blue_green fleet's scale-up of its idle slot (a call that is
    # not retried: the request is invalid as far as AWS is concerned)
    aws.advance(300)
    before = FleetView.read(aws, "api")
    baked = aws.bake(pipeline="scratch", version="4.1.0")

    # When its release is requested
    with failing("autoscaling", "UpdateAutoScalingGroup", "ValidationError") as fault:
        execution = request_release(aws, "api", baked.ami)

    # Then the step's Catch ran the release's rollback step: the fleet serves what it
    # served, nothing is left scaled up, and the release is closed with the reason
    after = FleetView.read(aws, "api")
    release = release_item(aws, "api", execution["name"])
    assert fault.served == 1
    assert execution["status"] == "FAILED", release
    assert after.serving_amis == before.serving_amis
    assert after.pointer == before.pointer
    assert after.idle_desired == 0
    assert release["outcome"] == "rolled back", release
    assert "ValidationError" in release["reason"]
    assert "lock_owner" not in after.fleet_item


def test_every_call_the_steps_made_is_one_their_role_grants(
    aws: EmbeddedAws, calls: CallLog
) -> None:
    # Given the releases above (each strategy, healthy and rolled back), with the calls
    # each step function made, and what the infrastructure grants each (STEP_CALLS)
    step_of = {step_handler(step): step for step in STEP_CALLS}
    handler_of = {
        f["FunctionName"]: step_of.get(f["Handler"], f["Handler"])
        for f in aws.client("lambda").list_functions()["Functions"]
    }
    made = {handler_of[function]: actions for function, actions in calls.by_function().items()}

    # Then every step ran, and called nothing its role does not allow
    assert set(STEP_CALLS) <= set(made)
    for step, (ledger, fleet, other) in STEP_CALLS.items():
        assert made[step] <= {*ledger, *fleet, *other}, step


def test_a_marginal_canary_step_holds_for_a_person_who_approves_then_rejects(
    aws: EmbeddedAws,
) -> None:
    # Given the canary fleet on a good AMI, and an image whose checkouts fail a fifth of
    # the time with no 5xx and no slowness: no alarm fires, the failed-checkouts metric
    # (weight 20 of 120) fails its judgment, so each step scores 83: marginal
    aws.advance(300)
    good = aws.bake(pipeline="scratch", version="6.0.0")
    assert request_release(aws, "web", good.ami)["status"] == "SUCCEEDED"
    cart = aws.bake(pipeline="scratch", version="6.0.1", health="cart")

    # When its release is requested, its first step holds after its extension, and a
    # person approves it
    aws.start_release("web", cart.ami, requested_by="tests")
    first = aws.held_step("web")
    assert first["traffic"] == 5, first
    assert "failed checkouts fail" in first["judgment"], first
    decision = {"fleet": "web", "requested_by": "carol", "release_id": first["release"]}
    aws.put("Canary Step Approved", {**decision, "reason": "known checkout noise"})

    # Then the release goes on to its next step, which holds too; rejected, it rolls back
    second = aws.held_step("web")
    assert (second["release"], second["traffic"]) == (first["release"], 25), second
    aws.put("Canary Step Rejected", {**decision, "reason": "checkouts fail"})
    aws.settle()
    after = FleetView.read(aws, "web")
    release = release_item(aws, "web", str(first["release"]))
    assert release["outcome"] == "rolled back", release
    assert release["reason"] == "canary step rejected by carol: checkouts fail", release
    assert after.serving_amis == {good.ami}
    assert after.pointer == good.ami
    assert after.idle_desired == 0
    steps = release["steps"]
    approved, rejected = steps.index("canary step approved"), steps.index("canary step rejected")
    assert steps.count("approval awaited") == 2
    assert steps.index("approval awaited") < approved < rejected
    assert steps[-1] == "rolled back"
    assert "approval" not in after.fleet_item
    assert "lock_owner" not in after.fleet_item


def test_people_read_one_line_of_text_per_outcome_and_no_raw_json(
    aws: EmbeddedAws, people: str
) -> None:
    # Given the releases above: successes, rollbacks (by alarm, by the release's own
    # path, by a person's rejection), a held canary step
    sqs, messages = aws.client("sqs"), []
    while batch := sqs.receive_message(QueueUrl=people, MaxNumberOfMessages=10).get("Messages"):
        messages += [m["Body"] for m in batch]
        sqs.delete_message_batch(
            QueueUrl=people,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
            ],
        )

    # Then each was told as a line of text naming the environment, and how to look
    assert messages
    for message in messages:
        text = json.loads(message)  # a JSON string (EventBridge's quoted template), no object
        assert isinstance(text, str), message
        assert text.startswith("phoenix sandbox: "), text
        assert "phoenix " in text.removeprefix("phoenix sandbox: "), text
    said = " | ".join(json.loads(m) for m in messages)
    assert "phoenix sandbox: web now serves ami-" in said
    assert "phoenix sandbox: api rolled back release " in said
    assert "Why: canary step rejected by carol: checkouts fail" in said
    assert "holds its canary at 5% for your decision" in said
    assert "phoenix sandbox: alarm phoenix-sandbox-web-" in said
