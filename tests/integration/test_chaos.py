"""The stateful chaos test (tests/chaos.py) in a sandbox of its own: 200 random
sequences, drawn from a fixed seed, with the invariants checked after every step."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.embedded import EmbeddedAws
from local.fleet_view import FleetView
from tests.chaos import CONFIG, FLEETS, World, in_flight_invariants, run_in
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


def test_random_sequences_keep_every_invariant(aws: EmbeddedAws) -> None:
    world = World(aws)
    run_in(world, SEQUENCES, steps=STEPS)
    assert world.sequences >= SEQUENCES
    assert not world.violations
