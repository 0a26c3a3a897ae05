"""Events as EventBridge may deliver them, in the shared sandbox: many at once to
functions that run concurrently, twice, and late and out of order
(local/eventbridge.py's `concurrently` and `at_least_once`; local/lambda_dispatch.py runs
each concurrent invocation in an execution environment of its own)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from local import clock, eventbridge, reliability
from local.embedded import EmbeddedAws
from local.fleet_view import FleetView, release_item

FLEETS = ("web", "api", "worker")


def _put(aws: EmbeddedAws, entries: list[dict[str, Any]]) -> None:
    events = aws.client("events")
    for first in range(0, len(entries), 10):  # PutEvents takes at most 10 entries
        response = events.put_events(Entries=entries[first : first + 10])
        assert response["FailedEntryCount"] == 0, response


def _alarm(name: str, number: int) -> dict[str, Any]:
    """A `CloudWatch Alarm State Change` to ALARM (AWS's sample event's shape)."""
    detail = {
        "alarmName": name,
        "state": {
            "value": "ALARM",
            "reason": f"storm {number}",
            "timestamp": "2026-12-01T12:00:00.000+0000",
        },
        "previousState": {"value": "OK", "reason": "storm"},
        "configuration": {"metrics": []},
    }
    return {
        "Source": "aws.cloudwatch",
        "DetailType": "CloudWatch Alarm State Change",
        "Detail": json.dumps(detail),
    }


def _request(fleet: str, ami: str) -> dict[str, Any]:
    detail = {"fleet": fleet, "ami": ami, "requested_by": "tests"}
    return {"Source": "phoenix", "DetailType": "Release Requested", "Detail": json.dumps(detail)}


def _until(aws: EmbeddedAws, condition: Callable[[], bool], minutes: int = 30) -> None:
    for _ in range(minutes):
        if condition():
            return
        aws.advance(60)
    raise AssertionError("not reached in time")


def _settled(aws: EmbeddedAws) -> None:
    """Every release ended, after Lambda's retries of what failed."""
    aws.settle()
    aws.advance(reliability.ASYNC_RETRIES)
    aws.settle()


def _new(aws: EmbeddedAws, before: set[str]) -> list[dict[str, Any]]:
    return [e for arn, e in aws.executions().items() if arn not in before]


def test_a_storm_of_fifty_alarm_events_at_once_rolls_a_canary_back_once(aws: EmbeddedAws) -> None:
    # Given the canary fleet on a good image, and an image that errors
    aws.advance(300)
    good = aws.bake(pipeline="delivery", version="5.0.0")
    assert aws.request_release("web", good.ami, requested_by="tests")["status"] == "SUCCEEDED"
    bad = aws.bake(pipeline="delivery", version="5.0.1", health="erroring")
    (idle,) = [slot for slot, weight in FleetView.peek("web").weights.items() if weight == 0]
    alarms = [
        a["AlarmName"]
        for a in aws.client("cloudwatch").describe_alarms(AlarmNamePrefix="phoenix-sandbox-web-")[
            "MetricAlarms"
        ]
    ]
    stormed: list[int] = []

    def storm() -> None:
        """Fifty alarm events across the fleet's alarms, the moment the canary takes
        traffic."""
        if not stormed and FleetView.peek("web").weights.get(idle, 0) > 0:
            stormed.append(len(aws.running_releases()))
            _put(aws, [_alarm(alarms[n % len(alarms)], n) for n in range(50)])

    # When its release's first canary step takes traffic, fifty alarm events arrive at
    # once, handled concurrently (and the slot's own alarm fires)
    stop = clock.watch(storm)
    try:
        with eventbridge.concurrently(workers=8):
            execution = aws.request_release("web", bad.ami, requested_by="tests")
    finally:
        stop()
    _settled(aws)

    # Then the release was rolled back once, and the fleet serves the good image
    assert stormed == [1]
    release = release_item(aws, "web", execution["name"])
    assert execution["status"] == "ABORTED", release
    assert release["outcome"] == "rolled back", release
    assert release["steps"].count("rolled back") == 1, release["steps"]
    assert reliability.invariants(aws, "web", execution["name"]) == []
    assert FleetView.read(aws, "web").serving_amis == {good.ami}


def test_an_image_announced_twice_at_once_starts_one_release_per_fleet(aws: EmbeddedAws) -> None:
    # Given every fleet following the golden pipeline
    before = set(aws.executions())

    # When its new image is announced, each event delivered twice, concurrently
    with eventbridge.concurrently(workers=8), eventbridge.at_least_once(twice=True):
        baked = aws.bake(pipeline="golden", version="5.1.0")
        aws.drain()
    _settled(aws)

    # Then each fleet ran one release of it, and serves it
    started = _new(aws, before)
    by_fleet = [
        json.loads(
            aws.client("stepfunctions").describe_execution(executionArn=e["executionArn"])["input"]
        )["fleet"]
        for e in started
    ]
    assert sorted(by_fleet) == sorted(FLEETS), started
    for fleet, execution in zip(by_fleet, started, strict=True):
        assert execution["status"] == "SUCCEEDED"
        assert reliability.invariants(aws, fleet, execution["name"]) == []
        assert FleetView.read(aws, fleet).serving_amis == {baked.ami}


def test_events_delivered_twice_late_and_last_first_act_once(aws: EmbeddedAws) -> None:
    # Given every event delivered twice, each a simulated minute late, the latest first
    aws.advance(300)
    good = aws.bake(pipeline="delivery", version="5.2.0")
    bad = aws.bake(pipeline="delivery", version="5.2.1", health="erroring")
    before = set(aws.executions())
    with eventbridge.at_least_once(twice=True, late=True):
        # When a good release and then a bad one are requested, its alarms firing
        _put(aws, [_request("api", good.ami)])
        _settled(aws)
        _put(aws, [_request("api", bad.ami)])
        _settled(aws)
    _settled(aws)

    # Then one release ran per request: the good one succeeded, the bad one rolled back,
    # and the fleet serves the good image
    first, second = sorted(_new(aws, before), key=lambda e: e["startDate"])
    assert release_item(aws, "api", first["name"])["outcome"] == "succeeded"
    assert release_item(aws, "api", second["name"])["outcome"] == "rolled back"
    assert reliability.invariants(aws, "api", second["name"]) == []
    assert FleetView.read(aws, "api").serving_amis == {good.ami}
