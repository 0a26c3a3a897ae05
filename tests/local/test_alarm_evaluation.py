"""Metric alarms evaluated from their own definitions, as the CloudWatch user guide
describes (local/alarm_evaluation.py cites the pages): the missing-data tables, the
metric math examples, and an alarm deployed as phoenix deploys its error-rate alarms."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from local import alarm_evaluation, install_extensions
from local.alarm_evaluation import decide
from local.metric_math import Expression, UnsupportedAlarmError
from phoenix.kernel.metrics import ERROR_RATE_EXPRESSION
from tests.local.eventbus import EventQueue

if TYPE_CHECKING:
    from types_boto3_cloudwatch.client import CloudWatchClient

REGION = "us-east-1"
ACCOUNT = "123456789012"

# "Configuring how CloudWatch alarms treat missing data": five data points retrieved for
# three evaluation periods, oldest first (0 within the threshold, X breaching, - missing),
# and the state for missing / ignore / breaching / notBreaching ("keep": retain the
# current state).
TABLES = {
    (3, 3): [
        ("0 - X - X", ("OK", "OK", "OK", "OK")),
        ("0 - - - -", ("OK", "OK", "OK", "OK")),
        ("- - - - -", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
        ("0 X X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
        ("- - - - X", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
        ("X - - - -", ("ALARM", "keep", "ALARM", "OK")),
    ],
    (2, 3): [
        ("0 - X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
        ("0 0 X 0 X", ("ALARM", "ALARM", "ALARM", "ALARM")),
        ("0 - X - -", ("OK", "OK", "ALARM", "OK")),
        ("- - - - 0", ("OK", "OK", "ALARM", "OK")),
        ("- - - - X", ("INSUFFICIENT_DATA", "keep", "ALARM", "OK")),
    ],
}
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
ROWS = [
    (m, n, points, treat, expected[i])
    for (m, n), rows in TABLES.items()
    for points, expected in rows
    for i, treat in enumerate(TREATMENTS)
]


@pytest.mark.parametrize(("m", "n", "points", "treat", "expected"), ROWS)
def test_missing_data_is_treated_as_the_guide_s_tables_say(
    m: int, n: int, points: str, treat: str, expected: str
) -> None:
    values = [{"0": 0.0, "X": 1.0, "-": None}[p] for p in points.split()]
    state, _ = decide(values, n, m, treat, lambda value: value > 0.5)
    assert (state or "keep") == expected


T = [datetime(2026, 12, 1, 9, minute, tzinfo=UTC) for minute in range(5)]


def _expression(text: str, **series: dict[datetime, float]) -> object:
    return Expression(text, series, T).value()


def test_metric_math_follows_the_guide_s_examples() -> None:
    # "Metric math syntax and functions": a comparison between two series reads a
    # missing value as 0
    metric1 = dict(zip(T, [30.0, 20.0, 0.0, 0.0], strict=False))
    metric2 = {T[0]: 20.0, T[2]: 20.0}
    assert _expression("metric1 < metric2", metric1=metric1, metric2=metric2) == dict(
        zip(T, [0.0, 0.0, 1.0, 0.0], strict=False)
    )
    # IF(metric1, metric2, metric3): [1,1,0,0,-], [30,-,0,0,30], [0,0,20,-,20] gives
    # [30,0,20,-,-]
    condition = dict(zip(T, [1.0, 1.0, 0.0, 0.0], strict=False))
    when_true = {T[0]: 30.0, T[2]: 0.0, T[3]: 0.0, T[4]: 30.0}
    when_false = {T[0]: 0.0, T[1]: 0.0, T[2]: 20.0, T[4]: 20.0}
    assert _expression("IF(c, t, f)", c=condition, t=when_true, f=when_false) == {
        T[0]: 30.0,
        T[1]: 0.0,
        T[2]: 20.0,
    }
    # a division by zero drops the data point; FILL gives every period a value
    errors = {T[0]: 5.0, T[1]: 1.0}
    requests = {T[0]: 100.0, T[1]: 0.0, T[2]: 50.0}
    assert _expression("100 * FILL(errors, 0) / requests", errors=errors, requests=requests) == {
        T[0]: 5.0,
        T[2]: 0.0,
    }
    with pytest.raises(UnsupportedAlarmError, match="'ANOMALY_DETECTION_BAND"):
        _expression("ANOMALY_DETECTION_BAND(m1, 2)", m1=errors)


@pytest.fixture
def cloudwatch() -> Iterator[CloudWatchClient]:
    with mock_aws():
        install_extensions(None)
        yield boto3.client("cloudwatch", region_name=REGION)


DIMENSIONS = [{"Name": "TargetGroup", "Value": "targetgroup/green/0123456789abcdef"}]


def _error_rate_alarm(client: CloudWatchClient, periods: int) -> None:
    def metric(query_id: str, name: str) -> Any:
        stat = {
            "Metric": {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": name,
                "Dimensions": DIMENSIONS,
            },
            "Period": 60,
            "Stat": "Sum",
        }
        return {"Id": query_id, "MetricStat": stat, "ReturnData": False}

    client.put_metric_alarm(
        AlarmName="green-5xx-rate",
        Metrics=[
            {
                "Id": "expr",
                "Expression": ERROR_RATE_EXPRESSION,
                "Label": "5xx %",
                "ReturnData": True,
            },
            metric("errors", "HTTPCode_Target_5XX_Count"),
            metric("requests", "RequestCount"),
        ],
        ComparisonOperator="GreaterThanThreshold",
        Threshold=5.0,
        EvaluationPeriods=periods,
        TreatMissingData="notBreaching",
    )


def _minute(client: CloudWatchClient, at: datetime, requests: float, errors: float | None) -> None:
    data: list[Any] = [{"MetricName": "RequestCount", "Value": requests}]
    if errors is not None:
        data.append({"MetricName": "HTTPCode_Target_5XX_Count", "Value": errors})
    client.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[d | {"Dimensions": DIMENSIONS, "Timestamp": at} for d in data],
    )


def _state(client: CloudWatchClient) -> Any:
    (alarm,) = client.describe_alarms(AlarmNames=["green-5xx-rate"])["MetricAlarms"]
    return alarm


def test_an_error_rate_alarm_is_evaluated_from_its_metric_math(
    cloudwatch: CloudWatchClient,
) -> None:
    # Given phoenix's error-rate alarm over two periods, and two minutes of traffic: the
    # first with 2% errors, the second 10%
    _error_rate_alarm(cloudwatch, periods=2)
    events = EventQueue.for_pattern("alarms", {"source": ["aws.cloudwatch"]})
    start = datetime(2026, 12, 1, 9, 0, 10, tzinfo=UTC)
    _minute(cloudwatch, start, requests=100, errors=2)
    _minute(cloudwatch, start + timedelta(minutes=1), requests=100, errors=10)

    # When it is evaluated: one breaching period of two is not enough
    alarm_evaluation.evaluate_region(ACCOUNT, REGION, start + timedelta(minutes=1))
    assert _state(cloudwatch)["StateValue"] == "OK"

    # Then a third minute at 50% (no 5xx metric at all in a minute is FILLed as 0)
    _minute(cloudwatch, start + timedelta(minutes=2), requests=100, errors=50)
    alarm_evaluation.evaluate_region(ACCOUNT, REGION, start + timedelta(minutes=2))
    alarm = _state(cloudwatch)
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"] == (
        "Threshold Crossed: 2 out of the last 2 datapoints [50.0 (01/12/26 09:02:00), "
        "10.0 (01/12/26 09:01:00)] was greater than the threshold (5.0) "
        "(minimum 2 datapoints for OK -> ALARM transition)."
    )
    reason_data = json.loads(str(alarm["StateReasonData"]))
    assert reason_data["recentDatapoints"] == [10.0, 50.0]
    assert "statistic" not in reason_data  # a metric math alarm's has none

    # And the event names its metrics as AWS's metric math sample does
    (event,) = events.received()
    assert event["detail"]["state"]["value"] == "ALARM"
    assert event["detail"]["configuration"]["metrics"] == [
        {"id": "expr", "expression": ERROR_RATE_EXPRESSION, "label": "5xx %", "returnData": True},
        *[
            {
                "id": query_id,
                "metricStat": {
                    "metric": {
                        "dimensions": {"TargetGroup": DIMENSIONS[0]["Value"]},
                        "name": name,
                        "namespace": "AWS/ApplicationELB",
                    },
                    "period": 60,
                    "stat": "Sum",
                },
                "returnData": False,
            }
            for query_id, name in (
                ("errors", "HTTPCode_Target_5XX_Count"),
                ("requests", "RequestCount"),
            )
        ],
    ]

    # And a minute without requests or errors is within the threshold: back to OK
    _minute(cloudwatch, start + timedelta(minutes=3), requests=0, errors=None)
    alarm_evaluation.evaluate_region(ACCOUNT, REGION, start + timedelta(minutes=3))
    assert _state(cloudwatch)["StateValue"] == "OK"
