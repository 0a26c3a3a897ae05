"""Health gates: warm-up of the new targets, and the judgment after each traffic step
(targets, alarms and, for a canary step, the canary against the baseline) (Stubber)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import ANY

from phoenix.release.handlers.gate import handle
from phoenix.release.runtime.gate import GateFailedError
from tests.release.release_state import (
    ALARMS,
    AMI,
    LISTENER,
    PREVIOUS_AMI,
    RELEASE_ID,
    SETTINGS,
    TABLE,
    TARGET_GROUPS,
    StubbedAws,
    expect_step,
    fleet_key,
    release_state,
    step_input,
)


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


class Captured:
    """Matches anything and keeps it, to look at after the call."""

    value: Any = None

    def __eq__(self, other: object) -> bool:
        self.value = other
        return True

    def __hash__(self) -> int:
        return id(self)


def _targets(aws: StubbedAws, slot: str = "green", *, older: int = 0, **states: int) -> None:
    """The slot's targets by state; `older` of the healthy ones run the previous AMI."""
    found = [
        {"Target": {"Id": f"i-{state}{n}"}, "TargetHealth": {"State": state}}
        for state, count in states.items()
        for n in range(count)
    ]
    aws.elbv2.add_response(
        "describe_target_health",
        {"TargetHealthDescriptions": found},
        {"TargetGroupArn": TARGET_GROUPS[slot]},
    )
    healthy = [f["Target"]["Id"] for f in found if f["TargetHealth"]["State"] == "healthy"]
    if healthy:
        instances = [
            {"InstanceId": i, "ImageId": PREVIOUS_AMI if n < older else AMI}
            for n, i in enumerate(healthy)
        ]
        aws.ec2.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": instances}]},
            {"InstanceIds": healthy},
        )


def _alarms(aws: StubbedAws, *firing: str) -> None:
    alarms = [{"AlarmName": a, "StateValue": "ALARM" if a in firing else "OK"} for a in ALARMS]
    aws.cloudwatch.add_response(
        "describe_alarms",
        {"MetricAlarms": alarms},
        {"AlarmNames": ALARMS, "AlarmTypes": ["MetricAlarm"]},
    )


# --- warm-up ------------------------------------------------------------------------------


def test_warmup_ready_when_every_wanted_target_is_healthy(aws: StubbedAws) -> None:
    # Given the 3 instances the target slot should have, all healthy
    _targets(aws, healthy=3)
    reason = f"3 of 3 targets healthy on {AMI} (3 healthy)"
    # the fleet item says the new slot is warm (the rollback function heeds its alarms now)
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": "SET flight.warm_at = :at",
            "ConditionExpression": "lock_owner = :release AND flight.#release = :release",
            "ExpressionAttributeNames": {"#release": "release"},
            "ExpressionAttributeValues": {":at": ANY, ":release": {"S": RELEASE_ID}},
        },
    )
    expect_step(aws, "new targets healthy", targets=reason)

    result = handle(step_input(release_state(), "warmup"), SETTINGS, aws.clients)

    assert result == {"ready": True, "checks_left": 4, "reason": reason}


def test_warmup_not_ready_counts_a_check_and_records_nothing(aws: StubbedAws) -> None:
    # Given one of three targets healthy, three checks left
    _targets(aws, healthy=1, initial=2)
    state = release_state(warmup={"ready": False, "checks_left": 3})

    result = handle(step_input(state, "warmup"), SETTINGS, aws.clients)

    assert result == {
        "ready": False,
        "checks_left": 2,
        "reason": f"1 of 3 targets healthy on {AMI} (1 healthy, 2 initial)",
    }
    assert aws.calls == ["elbv2.DescribeTargetHealth", "ec2.DescribeInstances"]


def test_warmup_fails_when_the_last_check_is_not_ready(aws: StubbedAws) -> None:
    _targets(aws, healthy=2, unhealthy=1)
    state = release_state(warmup={"ready": False, "checks_left": 1})

    with pytest.raises(GateFailedError) as raised:
        handle(step_input(state, "warmup"), SETTINGS, aws.clients)

    assert str(raised.value) == (
        "new targets not healthy after 5 checks: "
        f"2 of 3 targets healthy on {AMI} (2 healthy, 1 unhealthy)"
    )
    assert aws.calls == ["elbv2.DescribeTargetHealth", "ec2.DescribeInstances"]


def test_healthy_targets_still_on_an_older_ami_do_not_count(aws: StubbedAws) -> None:
    # Given three healthy targets, two of them instances of the slot's previous AMI
    # (a warm slot superseded by this release, its instances not yet replaced)
    _targets(aws, healthy=3, older=2)
    state = release_state(warmup={"ready": False, "checks_left": 3})

    result = handle(step_input(state, "warmup"), SETTINGS, aws.clients)

    assert result["ready"] is False
    assert result["reason"] == f"1 of 3 targets healthy on {AMI} (3 healthy)"


def test_warmup_with_no_targets_registered_yet_says_so(aws: StubbedAws) -> None:
    _targets(aws)
    result = handle(step_input(release_state(), "warmup"), SETTINGS, aws.clients)
    assert result["reason"] == f"0 of 3 targets healthy on {AMI} (no targets)"


# --- the judgment ---------------------------------------------------------------------------


def _at_step(target: int, *, ago: int = 290) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(seconds=ago)
    weights = {"target": target, "active": 100 - target, "last": target == 100}
    return {"weights": weights, "at": at.isoformat()}


def test_judge_fails_on_unhealthy_new_targets(aws: StubbedAws) -> None:
    _targets(aws, healthy=2, unhealthy=1)
    with pytest.raises(GateFailedError, match=r"^new targets not healthy: 2 of 3 targets"):
        handle(step_input(release_state(step=_at_step(5)), "judge"), SETTINGS, aws.clients)
    assert aws.calls == ["elbv2.DescribeTargetHealth", "ec2.DescribeInstances"]


def test_judge_fails_on_an_alarm_in_alarm(aws: StubbedAws) -> None:
    _targets(aws, healthy=3)
    _alarms(aws, ALARMS[0])
    with pytest.raises(GateFailedError, match=f"^alarms in ALARM: {ALARMS[0]}$"):
        handle(step_input(release_state(step=_at_step(5)), "judge"), SETTINGS, aws.clients)
    assert "cloudwatch.GetMetricData" not in aws.calls


@pytest.mark.parametrize(
    ("strategy", "step"), [("rolling", None), ("blue_green", 100), ("canary", 100)]
)
def test_judge_at_full_traffic_checks_targets_and_alarms_only(
    aws: StubbedAws, strategy: str, step: int | None
) -> None:
    # Given every request on the new slot (no baseline left to compare a canary with)
    slot = "blue" if strategy == "rolling" else "green"
    _targets(aws, slot, healthy=3)
    _alarms(aws)
    summary = f"3 of 3 targets healthy on {AMI} (3 healthy)"
    expect_step(aws, "health gate passed", traffic=100, detail=summary)
    state = release_state(strategy)
    if step is not None:
        state["step"] = _at_step(step)

    result = handle(step_input(state, "judge"), SETTINGS, aws.clients)

    assert result == {"summary": summary, "extend": False, "hold": False}
    assert "cloudwatch.GetMetricData" not in aws.calls


def _metrics(aws: StubbedAws, queries: Captured, start: datetime, **values: list[float]) -> None:
    aws.cloudwatch.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": name, "Values": found, "StatusCode": "Complete"}
                for name, found in values.items()
            ]
        },
        {"MetricDataQueries": queries, "StartTime": start - timedelta(seconds=1), "EndTime": ANY},
    )


EVEN_P99 = [0.200, 0.204, 0.198, 0.201, 0.199]  # seconds, one a minute
# canary and baseline metrics; the failure's start, or None for a pass
CANARY: dict[str, tuple[dict[str, list[float]], str | None]] = {
    "5% errors against a tenth of a percent": (
        {
            "canary_requestcount": [1000.0],
            "canary_httpcodetarget5xxcount": [50.0],
            "canary_targetresponsetime": EVEN_P99,
            "baseline_requestcount": [19000.0],
            "baseline_httpcodetarget5xxcount": [19.0],
            "baseline_targetresponsetime": EVEN_P99,
        },
        "canary judgment fail (score 50): critical metric failed: 5xx rate fail: canary 5%, "
        "baseline 0.1%, ratio 50 (allowed 1.2), p=",
    ),
    "p99 1.5 times the baseline's": (
        {
            "canary_requestcount": [1000.0],
            "canary_targetresponsetime": [1.5 * v for v in EVEN_P99],
            "baseline_requestcount": [19000.0],
            "baseline_targetresponsetime": EVEN_P99,
        },
        "canary judgment fail (score 50): score 50 below 75: p99 latency fail: canary 300 ms, "
        "baseline 200 ms, ratio 1.5 (allowed 1.2), p=",
    ),
    "no worse than a bad baseline": (
        {
            "canary_requestcount": [1000.0],
            "canary_httpcodetarget5xxcount": [50.0],
            "canary_targetresponsetime": EVEN_P99,
            "baseline_requestcount": [19000.0],
            "baseline_httpcodetarget5xxcount": [1140.0],
            "baseline_targetresponsetime": EVEN_P99,
        },
        None,
    ),
    "one error in ten requests": (
        {
            "canary_requestcount": [10.0],
            "canary_httpcodetarget5xxcount": [1.0],
            "canary_targetresponsetime": EVEN_P99,
            "baseline_requestcount": [19000.0],
            "baseline_targetresponsetime": EVEN_P99,
        },
        "canary judgment fail (score 50): score 50 below 75: 5xx rate no data: 10 canary and "
        "19000 baseline requests, fewer than 200",
    ),
    "no canary requests yet": (
        {},
        "canary judgment fail (score 0): score 0 below 75: 5xx rate no data: 0 canary",
    ),
}


@pytest.mark.parametrize("case", CANARY, ids=list(CANARY))
def test_a_canary_step_is_judged_against_the_baseline(aws: StubbedAws, case: str) -> None:
    # Given 5% of the traffic on the canary for the last 290 s, targets and alarms fine
    values, failure = CANARY[case]
    step = _at_step(5)
    _targets(aws, healthy=3)
    _alarms(aws)
    _metrics(aws, Captured(), datetime.fromisoformat(step["at"]), **values)
    targets = f"3 of 3 targets healthy on {AMI} (3 healthy)"
    outcome = "pass" if failure is None else "fail"
    # the judgment is recorded, passed or not, with each metric's numbers
    expect_step(aws, "canary judged", traffic=5, outcome=outcome, score=ANY, judged=ANY)
    if failure is None:
        detail = f"{targets}; canary judgment passed (score 100)"
        expect_step(aws, "health gate passed", traffic=5, detail=detail)
    event = step_input(release_state(step=step), "judge")

    # When the gate judges the step
    if failure is None:
        assert handle(event, SETTINGS, aws.clients) == {
            "summary": detail,
            "extend": False,
            "hold": False,
        }
    else:
        with pytest.raises(GateFailedError) as raised:
            handle(event, SETTINGS, aws.clients)
        assert str(raised.value).startswith(failure), str(raised.value)


def test_the_canary_metrics_are_each_target_groups_on_the_fleets_balancer(
    aws: StubbedAws,
) -> None:
    step = _at_step(25)
    queries = Captured()
    _targets(aws, healthy=3)
    _alarms(aws)
    _metrics(aws, queries, datetime.fromisoformat(step["at"]))
    expect_step(aws, "canary judged", traffic=25, outcome="fail", score=0.0, judged=ANY)

    with pytest.raises(GateFailedError, match="no data"):
        handle(step_input(release_state(step=step), "judge"), SETTINGS, aws.clients)

    balancer = "app/phoenix-sandbox-web/50dc6c495c0c9188"
    assert LISTENER.endswith(f"listener/{balancer}/f2f7dc8efc522ab2")
    found = {
        q["Id"]: (
            q["MetricStat"]["Metric"]["MetricName"],
            q["MetricStat"]["Stat"],
            {d["Name"]: d["Value"] for d in q["MetricStat"]["Metric"]["Dimensions"]},
            q["MetricStat"]["Period"],
        )
        for q in queries.value
    }
    canary = {"LoadBalancer": balancer, "TargetGroup": "targetgroup/web-green/4f1e2d3c4b5a6978"}
    baseline = {"LoadBalancer": balancer, "TargetGroup": "targetgroup/web-blue/73e2d6bc24d8a067"}
    assert found == {
        "canary_httpcodetarget5xxcount": ("HTTPCode_Target_5XX_Count", "Sum", canary, 300),
        "canary_requestcount": ("RequestCount", "Sum", canary, 300),
        "canary_targetresponsetime": ("TargetResponseTime", "p99", canary, 60),
        "baseline_httpcodetarget5xxcount": ("HTTPCode_Target_5XX_Count", "Sum", baseline, 300),
        "baseline_requestcount": ("RequestCount", "Sum", baseline, 300),
        "baseline_targetresponsetime": ("TargetResponseTime", "p99", baseline, 60),
    }
