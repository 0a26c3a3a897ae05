"""Cleanup in the embedded AWS: a release execution stopped by a person is undone by the
release cleanup function, on Step Functions' status change event (local/sfn_events.py);
one the rollback function stopped is left as that function left it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from local import clock
from local.api_calls import recording
from local.embedded import EmbeddedAws
from local.fleet_view import FleetView, release_item

CONFIG = Path(__file__).resolve().parent / "config"


def _released(aws: EmbeddedAws, fleet: str, version: str, health: str = "healthy") -> str:
    aws.advance(300)  # an earlier test's alarms recover with a few minutes of good traffic
    baked = aws.bake(pipeline="scratch", version=version, health=health)
    execution = aws.request_release(fleet, baked.ami, requested_by="tests")
    assert execution["status"] == "SUCCEEDED", release_item(aws, fleet, execution["name"])
    return baked.ami


def _stop_when(
    aws: EmbeddedAws, ready: Callable[[], bool], seen: dict[str, Any]
) -> Callable[[], None]:
    """Stop the running release, once, as soon as `ready()` (looked at after every
    simulated minute and every handler call), as a person would with StopExecution."""
    stepfunctions = aws.client("stepfunctions")

    def look() -> None:
        if seen or not aws.running_releases() or not ready():
            return
        (arn,) = aws.running_releases()
        seen["weights"] = FleetView.read(aws, "web").weights
        stepfunctions.stop_execution(executionArn=arn, error="Stopped", cause="by alice")

    return clock.watch(look)


def _split(aws: EmbeddedAws) -> bool:
    return sorted(FleetView.read(aws, "web").weights.values()) == [5, 95]


def test_a_release_stopped_mid_canary_is_put_back_and_closed(aws: EmbeddedAws) -> None:
    # Given web on a good AMI, and a healthy image being released to it
    good = _released(aws, "web", "2.0.0")
    new = aws.bake(pipeline="scratch", version="2.0.1")
    seen: dict[str, Any] = {}

    # When a person stops the release at its first canary step (5% on the new slot)
    stop = _stop_when(aws, lambda: _split(aws), seen)
    try:
        execution = aws.request_release("web", new.ami, requested_by="tests")
    finally:
        stop()

    # Then all traffic is back on the old slot, the new slot is empty, the lock is free
    # and the release is closed as failed, naming the status
    assert execution["status"] == "ABORTED"
    assert sorted(seen["weights"].values()) == [5, 95]
    view = FleetView.read(aws, "web")
    release = release_item(aws, "web", execution["name"])
    assert view.serving_amis == {good}, (view, release)
    assert sorted(view.weights.values()) == [0, 100]
    assert view.idle_desired == 0
    assert view.pointer == good
    assert "lock_owner" not in view.fleet_item
    assert release["outcome"] == "failed"
    assert release["reason"].startswith("execution ABORTED")
    assert release["steps"][-1] == "cleaned up"

    # and the next release goes through
    assert _released(aws, "web", "2.0.2") != good


def test_a_release_the_rollback_function_stopped_is_left_as_it_left_it(aws: EmbeddedAws) -> None:
    # Given web on a good AMI, and an image that passes health checks but errors
    good = _released(aws, "web", "3.0.0")
    bad = aws.bake(pipeline="scratch", version="3.0.1", health="erroring")

    # When it is released: an alarm at the first canary step makes the rollback function
    # put the traffic back and stop the execution (ABORTED, which the cleanup receives)
    with recording() as calls:
        execution = aws.request_release("web", bad.ami, requested_by="tests")

    # Then the release stays rolled back with the alarm's reason, and the cleanup, which
    # the execution's end reached after the rollback function stopped it, only read the
    # fleet from the registry and its ledger item (before: its HoldLock step)
    assert execution["status"] == "ABORTED"
    release = release_item(aws, "web", execution["name"])
    assert release["outcome"] == "rolled back"
    assert release["reason"].startswith("alarm phoenix-sandbox-web-")
    assert release["steps"][-1] == "rolled back"
    order = [(function, action) for _, function, action in calls.sequence]
    stopped = [action for _, action in order].index("states:StopExecution")
    after = [action for function, action in order[stopped:] if "Cleanup" in function]
    assert after == ["ssm:GetParameters", "dynamodb:GetItem"]
    view = FleetView.read(aws, "web")
    assert view.serving_amis == {good}
    assert "lock_owner" not in view.fleet_item
