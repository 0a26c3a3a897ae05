"""A rolling release's rollback whose instance refresh events never come, in the embedded
AWS: the release polls its rollback's refresh and records how that refresh really ended.

EventBridge delivers at least once but an event can be lost or late. Here the refresh
event receiver's rule loses every event: its target is removed for the release (the
embedded EventBridge, like moto's, still matches a rule put in DISABLED state, so
disabling it would lose nothing). The release's health gate fails (DescribeTargetHealth
answers HealthUnavailable), so the rollback starts a refresh back to the previous
version, and AwaitRollback's token never comes back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from local import clock, eventbridge
from local.embedded import EmbeddedAws
from local.faults import failing
from local.fleet_view import FleetView, release_item

CONFIG = Path(__file__).resolve().parent / "config"
FLEET = "worker"
GROUP = "phoenix-sandbox-worker-blue"
OUTCOMES = "phoenix-test-release-outcomes"


@pytest.fixture
def outcomes(aws: EmbeddedAws) -> Iterator[list[str]]:
    """The detail types of the `Release Rolled Back` / `Release Failed` events sent."""
    aws.client("events").put_rule(
        Name=OUTCOMES,
        EventPattern=json.dumps(
            {"source": ["phoenix"], "detail-type": ["Release Rolled Back", "Release Failed"]}
        ),
    )
    seen: list[str] = []
    stop = eventbridge.tap(OUTCOMES, lambda event: seen.append(event["detail-type"]))
    yield seen
    stop()
    aws.client("events").delete_rule(Name=OUTCOMES)


@contextmanager
def refresh_events_lost(aws: EmbeddedAws) -> Iterator[None]:
    """The refresh event receiver's rule delivers nothing while the block runs."""
    receiver = next(
        f["FunctionArn"]
        for f in aws.client("lambda").list_functions()["Functions"]
        if f["Handler"] == "phoenix.release.handlers.refresh_events.lambda_handler"
    )
    events = aws.client("events")
    (rule,) = events.list_rule_names_by_target(TargetArn=receiver)["RuleNames"]
    targets = events.list_targets_by_rule(Rule=rule)["Targets"]
    events.remove_targets(Rule=rule, Ids=[t["Id"] for t in targets])
    try:
        yield
    finally:
        events.put_targets(Rule=rule, Targets=targets)


def _released(aws: EmbeddedAws, version: str) -> str:
    aws.advance(300)  # an earlier test's alarms recover with a few minutes of good traffic
    baked = aws.bake(pipeline="scratch", version=version)
    execution = aws.request_release(FLEET, baked.ami, requested_by="tests")
    assert execution["status"] == "SUCCEEDED", release_item(aws, FLEET, execution["name"])
    return baked.ami


def _refresh_ids(aws: EmbeddedAws) -> list[str]:
    refreshes = aws.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=GROUP)
    return [r["InstanceRefreshId"] for r in refreshes["InstanceRefreshes"]]


def _failed_gate_with_events_lost(aws: EmbeddedAws, version: str) -> dict[str, Any]:
    """A release of a healthy AMI whose gate cannot read target health, every refresh
    event lost: the forward refresh and the refresh back both end unannounced."""
    baked = aws.bake(pipeline="scratch", version=version)
    with (
        refresh_events_lost(aws),
        failing("elastic-load-balancing-v2", "DescribeTargetHealth", "HealthUnavailable") as gate,
    ):
        execution = aws.request_release(FLEET, baked.ami, requested_by="tests")
    assert gate.served == 1
    return execution


def _states(aws: EmbeddedAws, execution: dict[str, Any]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"]
        for e in aws.history(execution["executionArn"])
        if "stateEnteredEventDetails" in e
    ]


def _timed_out(aws: EmbeddedAws, execution: dict[str, Any]) -> int:
    return sum(e["type"] == "TaskTimedOut" for e in aws.history(execution["executionArn"]))


def test_a_rollback_whose_refresh_event_is_lost_ends_rolled_back_by_polling(
    aws: EmbeddedAws, outcomes: list[str]
) -> None:
    # Given the fleet on a good AMI, and the refresh events about to be lost
    good = _released(aws, "20.0.0")
    before = _refresh_ids(aws)

    # When a release fails its gate and its rollback's refresh ends unannounced
    execution = _failed_gate_with_events_lost(aws, "20.0.1")

    # Then the release polled the refresh back, found it Successful and recorded the
    # rollback, with the gate's failure as the reason
    release = release_item(aws, FLEET, execution["name"])
    states = _states(aws, execution)
    assert execution["status"] == "FAILED"
    assert release["outcome"] == "rolled back", release
    assert "HealthUnavailable" in release["reason"]
    assert outcomes == ["Release Rolled Back"]
    # (both token waits timed out: no event ended them)
    assert _timed_out(aws, execution) == 2
    assert states.index("AwaitRollback") < states.index("PollRollback")
    assert states[-2:] == ["RecordRollback", "ReleaseNotDone"]
    (back, forward, *_) = _refresh_ids(aws)
    assert {forward, back}.isdisjoint(before)
    (refresh,) = aws.client("autoscaling").describe_instance_refreshes(
        AutoScalingGroupName=GROUP, InstanceRefreshIds=[back]
    )["InstanceRefreshes"]
    assert refresh["Status"] == "Successful"
    after = FleetView.read(aws, FLEET)
    assert after.serving_amis == {good}
    assert "lock_owner" not in after.fleet_item
    assert after.fleet_item["last_good_ami"]["S"] == good


def test_a_rollback_whose_refresh_is_cancelled_unannounced_ends_failed(
    aws: EmbeddedAws, outcomes: list[str]
) -> None:
    # Given the fleet on a good AMI, and someone who cancels the release's refresh back
    # to it as soon as it runs (its Cancelled event lost like the others)
    _released(aws, "21.0.0")
    before = set(_refresh_ids(aws))
    cancelled: list[str] = []

    def cancel_the_refresh_back() -> None:
        new = [r for r in _refresh_ids(aws) if r not in before]
        if len(new) == 2 and not cancelled:
            aws.client("autoscaling").cancel_instance_refresh(AutoScalingGroupName=GROUP)
            cancelled.append(new[0])

    stop = clock.watch(cancel_the_refresh_back)
    try:
        # When a release fails its gate and its rollback's refresh back is cancelled
        execution = _failed_gate_with_events_lost(aws, "21.0.1")
    finally:
        stop()

    # Then the release polled that refresh and ended failed, with its status and reason
    # and the release's own, and `Release Failed`: nothing claims the fleet is back
    release = release_item(aws, FLEET, execution["name"])
    assert cancelled, "the refresh back never ran"
    assert execution["status"] == "FAILED"
    assert release["outcome"] == "failed", release
    assert f"{cancelled[0]} ended Cancelled" in release["reason"]
    assert "HealthUnavailable" in release["reason"]
    assert outcomes == ["Release Failed"]
    assert _timed_out(aws, execution) == 2
    assert _states(aws, execution)[-3:] == ["RollbackNotDone", "RecordFailure", "ReleaseNotDone"]
    assert "lock_owner" not in FleetView.read(aws, FLEET).fleet_item
