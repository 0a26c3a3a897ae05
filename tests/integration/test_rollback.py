"""Rollback in the embedded AWS: alarm-driven (in flight, inside the rollback window,
later), manual, pause and resume, alarm storms and a throttled rollback."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from local import clock
from local.api_calls import recording
from local.embedded import EmbeddedAws
from local.faults import failing
from local.fleet_view import FleetView, ledger_table, release_item
from phoenix.kernel.ledger import Ledger

CONFIG = Path(__file__).resolve().parent / "config"


def _released(aws: EmbeddedAws, fleet: str, version: str, health: str = "healthy") -> str:
    aws.advance(300)  # an earlier test's alarms recover with a few minutes of good traffic
    baked = aws.bake(pipeline="scratch", version=version, health=health)
    execution = aws.request_release(fleet, baked.ami, requested_by="tests")
    assert execution["status"] == "SUCCEEDED", release_item(aws, fleet, execution["name"])
    return baked.ami


def _put(aws: EmbeddedAws, entries: list[dict[str, Any]]) -> None:
    response = aws.client("events").put_events(Entries=entries)
    assert response["FailedEntryCount"] == 0
    aws.settle()


def _request(fleet: str, detail_type: str, reason: str = "") -> dict[str, Any]:
    detail = {"fleet": fleet, "requested_by": "tests", "reason": reason}
    return {"Source": "phoenix", "DetailType": detail_type, "Detail": json.dumps(detail)}


def _alarm(name: str) -> dict[str, Any]:
    detail = {
        "alarmName": name,
        "state": {"value": "ALARM", "reason": "test", "timestamp": "2026-11-25T12:00:00.000+0000"},
        "previousState": {"value": "OK", "reason": "test"},
        "configuration": {"metrics": []},
    }
    return {
        "Source": "aws.cloudwatch",
        "DetailType": "CloudWatch Alarm State Change",
        "Detail": json.dumps(detail),
    }


def _rolled_back_by_its_own_alarm(aws: EmbeddedAws, fleet: str, ami: str) -> dict[str, Any]:
    """`ami` turning bad on the fleet's real traffic (its instances answer half of their
    requests with 5xx from now on) for five minutes: the one rollback release its alarm
    started, which succeeded (its ledger item)."""
    aws.client("ec2").create_tags(
        Resources=[ami], Tags=[{"Key": "phoenix:health", "Value": "erroring"}]
    )
    before = set(aws.executions())
    aws.advance(5 * 60)
    aws.settle()
    new = [e for arn, e in aws.executions().items() if arn not in before]
    assert [e["name"].startswith(f"rollback-{fleet}-") for e in new] == [True]
    release = release_item(aws, fleet, new[0]["name"])
    assert new[0]["status"] == "SUCCEEDED", release
    return release


def _assert_back_on(aws: EmbeddedAws, fleet: str, ami: str) -> FleetView:
    view = FleetView.read(aws, fleet)
    assert view.serving_amis == {ami}
    assert view.pointer == ami
    assert sorted(view.weights.values()) in ([100], [0, 100])
    assert view.idle_desired == 0
    assert "lock_owner" not in view.fleet_item
    return view


def test_an_alarm_during_a_canary_step_rolls_the_release_back(aws: EmbeddedAws) -> None:
    # Given web on a good AMI, and an image that passes health checks but errors
    good = _released(aws, "web", "5.0.0")
    bad = aws.bake(pipeline="scratch", version="5.0.1", health="erroring")

    # When it is released: at the first canary step the slot's 5xx alarm goes to ALARM
    execution = aws.request_release("web", bad.ami, requested_by="tests")

    # Then the rollback function took the traffic back and stopped the release
    assert execution["status"] == "ABORTED"
    _assert_back_on(aws, "web", good)
    release = release_item(aws, "web", execution["name"])
    assert release["outcome"] == "rolled back"
    assert release["reason"].startswith("alarm phoenix-sandbox-web-")
    assert release["steps"][-1] == "rolled back"


def test_an_alarm_inside_the_rollback_window_moves_traffic_back(aws: EmbeddedAws) -> None:
    # Given api on a good AMI, then a release of one that degrades after its release
    good = _released(aws, "api", "6.0.0")
    degrading = _released(aws, "api", "6.0.1", health="degrading")

    # Then its alarm, inside the rollback window, put traffic back on the warm old slot,
    # restored the pointer, and the window's end retired nothing
    view = _assert_back_on(aws, "api", good)
    assert degrading != good
    assert view.fleet_item["last_outcome"]["S"] == "rolled back"


def test_later_a_rollback_is_a_new_release_of_the_last_good_ami(aws: EmbeddedAws) -> None:
    # Given worker released twice (rolling: no window)
    first = _released(aws, "worker", "7.0.0")
    _released(aws, "worker", "7.0.1")

    # When an alarm storm hits it: five alarms of the fleet at once
    before = set(aws.executions())
    _put(aws, [_alarm(f"phoenix-sandbox-worker-{what}") for what in ("5xx-rate",) * 5])

    # Then one new release, marked as a rollback, put the first AMI back
    new = [e for arn, e in aws.executions().items() if arn not in before]
    assert [e["name"].startswith("rollback-worker-") for e in new] == [True]
    assert new[0]["status"] == "SUCCEEDED"
    _assert_back_on(aws, "worker", first)
    assert release_item(aws, "worker", new[0]["name"])["to_ami"] == first


def test_after_the_window_the_alarm_itself_rolls_back_on_a_fast_track(aws: EmbeddedAws) -> None:
    # Given web (canary, 30-minute window) released twice, the window long over, and then
    # the last AMI turning bad (a fault found after release: its instances answer half
    # of their requests with 5xx from now on)
    first = _released(aws, "web", "7.1.0")
    last = _released(aws, "web", "7.1.1")
    aws.advance(40 * 60)

    # When the fleet's own 5xx alarm goes to ALARM on the real traffic
    release = _rolled_back_by_its_own_alarm(aws, "web", last)

    # Then one rollback release, not refused by that alarm, put the first AMI back with
    # all the traffic in one step (no canary steps)
    assert release["to_ami"] == first
    assert release["steps"].count("health gate passed") == 1, release["steps"]
    _assert_back_on(aws, "web", first)


def test_an_alarm_with_nothing_to_roll_back_changes_nothing(aws: EmbeddedAws) -> None:
    # Given worker just rolled back (its last release is the rollback itself)
    before = FleetView.read(aws, "worker")
    started = set(aws.executions())

    # When another alarm of the fleet comes
    _put(aws, [_alarm("phoenix-sandbox-worker-p99-latency")])

    # Then nothing started and nothing changed
    assert set(aws.executions()) == started
    after = FleetView.read(aws, "worker")
    assert (after.serving_amis, after.pointer) == (before.serving_amis, before.pointer)


def test_a_paused_fleet_refuses_releases_until_resumed(aws: EmbeddedAws) -> None:
    aws.advance(300)
    baked = aws.bake(pipeline="scratch", version="8.0.0")
    _put(aws, [_request("api", "Releases Paused", "incident 42")])

    refused = aws.request_release("api", baked.ami, requested_by="tests")
    assert refused["status"] == "FAILED"
    release = release_item(aws, "api", refused["name"])
    assert release["outcome"] == "rejected"
    assert "paused" in release["reason"]
    assert "incident 42" in release["reason"]

    _put(aws, [_request("api", "Releases Resumed")])
    assert aws.request_release("api", baked.ami, requested_by="tests")["status"] == "SUCCEEDED"


def test_a_rollback_throttled_once_is_retried(aws: EmbeddedAws) -> None:
    # Given api on a good AMI, and AWS throttling the rollback's first ModifyListener
    good = _released(aws, "api", "9.0.0")
    with (
        failing("elastic-load-balancing-v2", "ModifyListener") as fault,
        recording() as calls,
    ):
        # When a release of an AMI that degrades sets off an alarm inside the window
        _released(aws, "api", "9.0.1", health="degrading")

    # Then the throttled call was retried and the traffic is back on the good AMI
    assert fault.served == 1
    changes = [a for (_, a), n in calls.calls.items() for _ in range(n)]
    assert "elasticloadbalancing:ModifyListener" in changes
    _assert_back_on(aws, "api", good)


def test_a_requested_rollback_releases_the_ami_before_the_last(aws: EmbeddedAws) -> None:
    # Given web released twice, the last release's rollback window long over
    first = _released(aws, "web", "10.0.0")
    _released(aws, "web", "10.0.1")
    before = set(aws.executions())

    # When an operator asks for a rollback
    _put(aws, [_request("web", "Rollback Requested", "customer reports")])

    # Then a release marked as a rollback, with the requester, put the first AMI back
    (new,) = [e for arn, e in aws.executions().items() if arn not in before]
    assert new["name"].startswith("rollback-web-")
    assert new["status"] == "SUCCEEDED"
    _assert_back_on(aws, "web", first)


def test_a_release_for_a_locked_fleet_queues_when_the_fleet_says_so(aws: EmbeddedAws) -> None:
    # Given api (when_locked: queue) locked by another release for the next 12 minutes
    aws.advance(300)
    table = aws.client("dynamodb").list_tables()["TableNames"][0]
    key = {"pk": {"S": "FLEET#api"}, "sk": {"S": "FLEET"}}
    aws.client("dynamodb").update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET lock_owner = :other, lock_expires = :later",
        ExpressionAttributeValues={
            ":other": {"S": "api-another-release"},
            ":later": {"S": "2999-01-01T00:00:00.000000Z"},
        },
    )
    unlock_at = clock.elapsed() + 12 * 60

    def other_release_ends() -> None:
        if clock.elapsed() >= unlock_at:
            Ledger(aws.client("dynamodb"), table).release_lock("api", "api-another-release")

    stop = clock.watch(other_release_ends)
    try:
        # When a release is requested meanwhile
        baked = aws.bake(pipeline="scratch", version="11.0.0")
        execution = aws.request_release("api", baked.ami, requested_by="tests")
    finally:
        stop()

    # Then it waited for the lock and released once it was free
    assert execution["status"] == "SUCCEEDED"
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in aws.history(execution["executionArn"])
        if "stateEnteredEventDetails" in e
    ]
    assert entered.count("QueueWait") >= 2
    _assert_back_on(aws, "api", baked.ami)


def test_a_rollback_release_waits_for_the_retire_of_the_release_it_undoes(
    aws: EmbeddedAws,
) -> None:
    # Given web released twice, the rollback function deciding on a rollback release
    # (the window over, no lock), and then the last release's retire taking the lock
    # (for three minutes) before that release's preflight
    first = _released(aws, "web", "12.0.0")
    _released(aws, "web", "12.0.1")
    last = FleetView.read(aws, "web").fleet_item["last_release"]["S"]
    table = ledger_table(aws)
    book = Ledger(aws.client("dynamodb"), table)
    book.acquire("web", last, hold=timedelta(minutes=5))  # the retire's RETIRE_HOLD
    unlock_at = clock.elapsed() + 3 * 60

    def retire_ends() -> None:
        if clock.elapsed() >= unlock_at:
            book.release_lock("web", last)

    (machine,) = aws.client("stepfunctions").list_state_machines()["stateMachines"]
    request = {
        "environment": "sandbox",
        "fleet": "web",
        "ami": first,
        "trigger": f"rollback of {last}: tests",
        "event_id": "tests-retire-race",
        "image": None,
    }
    stop = clock.watch(retire_ends)
    try:
        # When the rollback release starts, as the rollback function starts it
        arn = aws.client("stepfunctions").start_execution(
            stateMachineArn=machine["stateMachineArn"],
            name=f"rollback-{last}",  # as the rollback function names it
            input=json.dumps(request),
        )["executionArn"]
        aws.settle()
    finally:
        stop()

    # Then it waited for the lock, a minute at a time, and put the AMI before back
    execution = aws.client("stepfunctions").describe_execution(executionArn=arn)
    assert execution["status"] == "SUCCEEDED", release_item(aws, "web", execution["name"])
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in aws.history(arn)
        if "stateEnteredEventDetails" in e
    ]
    assert entered.count("RollbackLockWait") >= 3
    assert "RecordRejection" not in entered
    _assert_back_on(aws, "web", first)


def test_after_release_a_rolling_fleets_own_alarm_rolls_it_back_on_a_fast_track(
    aws: EmbeddedAws,
) -> None:
    # Given worker (rolling: checkpoints at 50 and 100, its alarms on its refreshes)
    # released twice, and then the last AMI turning bad on the real traffic
    first = _released(aws, "worker", "7.2.0")
    last = _released(aws, "worker", "7.2.1")

    # When the fleet's own 5xx alarm goes to ALARM
    release = _rolled_back_by_its_own_alarm(aws, "worker", last)

    # Then one rollback release put the first AMI back: its refresh did not stop at the
    # checkpoints, and the alarm that started it (still in ALARM while the bad AMI
    # serves) did not fail it
    assert release["to_ami"] == first
    refreshes = aws.client("autoscaling").describe_instance_refreshes(
        AutoScalingGroupName="phoenix-sandbox-worker-blue"
    )["InstanceRefreshes"]
    preferences = refreshes[0]["Preferences"]
    assert "CheckpointPercentages" not in preferences
    assert "AlarmSpecification" not in preferences
    _assert_back_on(aws, "worker", first)
