"""The stateful chaos test (tests/chaos.py) in a sandbox of its own: interleavings chosen
(a rollback request while a release succeeds, an alarm while its old slot retires),
then 200 random sequences, drawn from a fixed seed, with the invariants checked after
every step."""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local import eventbridge, reliability
from local.api_calls import Between, between
from local.embedded import EmbeddedAws
from local.fleet_view import FleetView, ledger_item, ledger_table
from phoenix.kernel.ledger import IN_PROGRESS
from tests.chaos import (
    BY,
    CONFIG,
    FLEETS,
    World,
    in_flight_invariants,
    run_in,
    settled_invariants,
)
from tests.integration.conftest import SharedSandbox

SEQUENCES = 200
# At most this many steps a sequence: bounded, so that 200 fit in make test.
STEPS = 3


@pytest.fixture(scope="module")
def aws(shared_sandbox: SharedSandbox) -> Iterator[EmbeddedAws]:
    shared_sandbox.end()  # one embedded AWS per process at a time
    with tempfile.TemporaryDirectory() as scratch, EmbeddedAws() as embedded:
        embedded.deploy("sandbox", outdir=Path(scratch) / "cdk.out", config_dir=CONFIG)
        yield embedded


def _weights(aws: EmbeddedAws, fleet: str, weights: dict[str, int]) -> None:
    """Set `fleet`'s listener weights by slot."""
    autoscaling, elbv2 = aws.client("autoscaling"), aws.client("elbv2")
    slot_of = {
        group["TargetGroupARNs"][0]: group["AutoScalingGroupName"].rsplit("-", 1)[1]
        for group in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
        if group["AutoScalingGroupName"].startswith(f"phoenix-sandbox-{fleet}-")
    }
    for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
        for listener in elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
            "Listeners"
        ]:
            forward = listener["DefaultActions"][0].get("ForwardConfig", {})
            targets: list[dict[str, Any]] = forward.get("TargetGroups", [])
            if not targets or targets[0]["TargetGroupArn"] not in slot_of:
                continue
            moved = [
                {
                    "TargetGroupArn": t["TargetGroupArn"],
                    "Weight": weights[slot_of[t["TargetGroupArn"]]],
                }
                for t in targets
            ]
            elbv2.modify_listener(
                ListenerArn=listener["ListenerArn"],
                DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": moved}}],
            )


def test_the_view_read_from_the_backends_is_the_one_the_apis_give(aws: EmbeddedAws) -> None:
    for fleet in FLEETS:
        assert FleetView.peek(fleet) == FleetView.read(aws, fleet)


def test_the_invariants_see_traffic_sent_to_an_empty_slot(aws: EmbeddedAws) -> None:
    view = FleetView.peek("api")
    (idle,) = [slot for slot, weight in view.weights.items() if weight == 0]
    assert not in_flight_invariants(aws)
    _weights(aws, "api", {slot: 100 if slot == idle else 0 for slot in view.weights})
    try:
        broken = in_flight_invariants(aws)
    finally:
        _weights(aws, "api", view.weights)
    assert any("serving" in problem or "empty slot" in problem for problem in broken), broken
    assert not in_flight_invariants(aws)


def test_the_invariants_see_a_release_left_open(aws: EmbeddedAws) -> None:
    # Given a release item of the api fleet that says "in progress" (as Ledger.open_release
    # writes it), with no execution running
    dynamodb, table = aws.client("dynamodb"), ledger_table(aws)
    key = {"pk": {"S": "FLEET#api"}, "sk": {"S": "RELEASE#api-left-open"}}
    dynamodb.put_item(TableName=table, Item={**key, "outcome": {"S": IN_PROGRESS}})
    try:
        # Then both oracles say it is not closed
        assert "release api-left-open not closed in the ledger" in settled_invariants(
            aws, ["api-left-open"]
        )
        assert any("not closed" in v for v in reliability.invariants(aws, "api", "api-left-open"))
    finally:
        dynamodb.delete_item(TableName=table, Key=key)


def test_random_sequences_keep_every_invariant(aws: EmbeddedAws) -> None:
    world = World(aws)
    run_in(world, SEQUENCES, steps=STEPS)
    assert world.sequences >= SEQUENCES
    assert not world.violations


# Interleavings chosen rather than drawn: a request or an alarm that arrives while a step
# of the release is half done (local/api_calls.between holds the step's function just
# before one of its calls while the request is handled).
FINALIZE = "phoenix.release.handlers.finalize.lambda_handler"
_version = itertools.count(1)


def _finalizing(aws: EmbeddedAws, fleet: str, action: str) -> Callable[[str, Any], bool]:
    """An invocation of the release's finalize function for `fleet`'s `action` step."""
    (name,) = [
        f["FunctionName"]
        for f in aws.client("lambda").list_functions()["Functions"]
        if f["Handler"] == FINALIZE
    ]

    def during(function: str, event: Any) -> bool:
        return (
            function == name
            and isinstance(event, dict)
            and event.get("action") == action
            and event.get("state", {}).get("fleet") == fleet
        )

    return during


def _phase(fleet: str, release: str) -> str:
    """Where the release is, from the fleet's ledger item: closed as its last release or
    not, the lock held or not."""
    item = FleetView.peek(fleet).fleet_item
    ended = item.get("last_release", {}).get("S") == release
    locked = "lock_owner" in item
    return f"{'closed' if ended else 'open'}, {'locked' if locked else 'free'}"


def _put(aws: EmbeddedAws, detail_type: str, detail: dict[str, Any]) -> None:
    aws.client("events").put_events(
        Entries=[{"Source": "phoenix", "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )
    eventbridge.drain()


@pytest.mark.parametrize(
    ("action", "nth", "phase"),
    [
        ("ssm:PutParameter", 1, "open, locked"),  # before the pointer moves
        ("dynamodb:UpdateItem", 3, "closed, locked"),  # closed as succeeded, lock held
        ("events:PutEvents", 2, "closed, free"),  # the lock freed, Release Succeeded next
    ],
)
def test_a_rollback_request_while_a_release_succeeds_rolls_it_back(
    aws: EmbeddedAws, action: str, nth: int, phase: str
) -> None:
    # Given the canary fleet serving a good image, and a release of another on its way
    aws.advance(600)
    before = FleetView.peek("web").pointer
    baked = aws.bake(pipeline="interleaving", version=f"8.{next(_version)}.0")
    seen: list[str] = []

    def request() -> None:
        (running,) = [e["name"] for e in aws.executions().values() if e["status"] == "RUNNING"]
        seen.append(_phase("web", running))
        _put(aws, "Rollback Requested", {"fleet": "web", "reason": "on call", **BY})

    # When a rollback is requested while its Succeed step is at `action`
    interleaving = Between(action, _finalizing(aws, "web", "succeed"), request, nth=nth)
    with between(interleaving):
        execution = aws.request_release("web", baked.ami, requested_by="tests")
    aws.advance(reliability.ASYNC_RETRIES)
    aws.settle()

    # Then the release is rolled back, and the fleet serves the image before it
    assert interleaving.ran
    assert interleaving.error is None, interleaving.error
    assert seen == [phase]
    release = ledger_item(aws, "FLEET#web", f"RELEASE#{execution['name']}")
    assert release["outcome"]["S"] == "rolled back", release
    assert reliability.invariants(aws, "web", execution["name"]) == []
    assert FleetView.read(aws, "web").serving_amis == {before}


@pytest.mark.parametrize(
    ("action", "nth", "phase"),
    [
        ("dynamodb:UpdateItem", 1, "window open, free"),  # before the window closes
        ("autoscaling:UpdateAutoScalingGroup", 1, "window closed, locked"),  # the scale-in
    ],
)
def test_an_alarm_while_the_old_slot_retires_rolls_the_release_back(
    aws: EmbeddedAws, action: str, nth: int, phase: str
) -> None:
    # Given the canary fleet serving a good image, and a release of another succeeding
    aws.advance(600)
    before = FleetView.peek("web").pointer
    baked = aws.bake(pipeline="interleaving", version=f"8.{next(_version)}.0")
    (alarm, *_) = sorted(_alarms(aws, "web"))
    seen: list[str] = []

    def fire() -> None:
        item = FleetView.peek("web").fleet_item
        window = "window open" if "warm_slot" in item else "window closed"
        seen.append(f"{window}, {'locked' if 'lock_owner' in item else 'free'}")
        aws.client("cloudwatch").set_alarm_state(
            AlarmName=alarm, StateValue="ALARM", StateReason="interleaving"
        )
        eventbridge.drain()

    # When one of its alarms fires while the window's end retires the old slot
    interleaving = Between(action, _finalizing(aws, "web", "retire"), fire, nth=nth)
    started = set(aws.executions())
    with between(interleaving):
        _put(aws, "Release Requested", {"fleet": "web", "ami": baked.ami, **BY})
        aws.settle()
    aws.advance(reliability.ASYNC_RETRIES)  # Lambda delivers a failed event again
    aws.settle()

    # Then the release ran to its end, and a rollback release of the image before it
    # followed: the fleet serves that image
    assert interleaving.ran
    assert interleaving.error is None, interleaving.error
    assert seen == [phase]
    ended = {e["name"]: e["status"] for arn, e in aws.executions().items() if arn not in started}
    rollback, release = sorted(ended)
    assert rollback == f"rollback-{release}"
    assert set(ended.values()) == {"SUCCEEDED"}, ended
    assert reliability.invariants(aws, "web", rollback) == []
    assert FleetView.read(aws, "web").serving_amis == {before}


def _alarms(aws: EmbeddedAws, fleet: str) -> list[str]:
    described = aws.client("cloudwatch").describe_alarms(
        AlarmNamePrefix=f"phoenix-sandbox-{fleet}-"
    )
    return [a["AlarmName"] for a in described["MetricAlarms"]]
