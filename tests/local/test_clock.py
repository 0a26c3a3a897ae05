"""The simulated clock: one "now" for handlers, moto and the interpreter (see
local/clock.py and local/sim_time.py for the AWS documentation each follows)."""

from __future__ import annotations

import itertools
import json

import boto3
from moto import mock_aws
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from local import clock, install_extensions, sim_time
from local.application import REQUESTS_PER_MINUTE
from phoenix.kernel import clock as phoenix_clock
from tests.local.clock_world import (
    HOUR,
    REGION,
    _an_hour_ahead,
    _ended,
    _function,
    _invoke,
    _lead,
    _machine,
    _refresh_start_time,
    _serving_target_group,
    probe,
)


def test_after_an_hour_handlers_and_moto_read_the_same_simulated_time(clock_aws: None) -> None:
    # Given an hour of simulated time passed in this world
    _function()
    clock.advance(HOUR)

    # Then a handler, on its own thread, reads an hour later than real time
    answer = _invoke({})
    assert answer["thread"] == "lambda:phoenix-probe"
    assert _an_hour_ahead(answer["now"]), answer
    # and so does every time moto stamps: an alarm's state change,
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName="probe",
        Namespace="AWS/ApplicationELB",
        MetricName="RequestCount",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="probe", StateValue="ALARM", StateReason="probe")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=["probe"])["MetricAlarms"]
    assert _an_hour_ahead(alarm["StateUpdatedTimestamp"])
    # an instance refresh's StartTime (local.instance_refresh, a dataclass default),
    assert _an_hour_ahead(_refresh_start_time())
    # and an execution's startDate, its context object's times and its history
    machine = _machine(
        {
            "StartAt": "Times",
            "States": {
                "Times": {
                    "Type": "Pass",
                    "Parameters": {
                        "started.$": "$$.Execution.StartTime",
                        "entered.$": "$$.State.EnteredTime",
                    },
                    "End": True,
                }
            },
        }
    )
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    started = stepfunctions.start_execution(stateMachineArn=machine)
    assert _an_hour_ahead(started["startDate"])
    execution = _ended(started["executionArn"])
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert _an_hour_ahead(output["started"])
    assert _an_hour_ahead(output["entered"])
    assert all(_an_hour_ahead(e["timestamp"]) for e in execution["history"])
    assert _an_hour_ahead(execution["stopDate"])


def test_a_handler_finds_the_last_minutes_the_application_model_published(clock_aws: None) -> None:
    # Given an hour of traffic on a target group, a minute at a time
    dimensions = _serving_target_group()
    _function()
    clock.advance(HOUR)

    # When a handler asks CloudWatch for the last five minutes of its requests
    _invoke({"dimensions": dimensions})

    # Then it finds one datapoint per simulated minute of those five minutes (four or
    # five: the minute that began five minutes ago was stamped within a second of the
    # window's start, which CloudWatch reads to the second), each a minute of traffic,
    # all an hour ahead of real time: not the hour's sixty stamped at one real instant
    (seen,) = probe.calls
    minutes = len(seen["values"])
    assert minutes in (4, 5), seen
    # (a minute's requests are a Poisson draw around the model's rate: within 6 sigma)
    assert all(abs(v - REQUESTS_PER_MINUTE) < 6 * REQUESTS_PER_MINUTE**0.5 for v in seen["values"])
    stamps = sorted(phoenix_clock.parse_time(t) for t in seen["timestamps"])
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)] == [60.0] * (
        minutes - 1
    )
    # (a datapoint's timestamp is its period's start, the window's start to the second)
    assert all(HOUR - 5 * 60 - 2 < _lead(t) <= HOUR for t in stamps), stamps


def test_the_time_passed_in_a_world_ends_with_it() -> None:
    # A world in mock_aws: its simulated time goes when moto forgets its state
    with mock_aws():
        install_extensions(None)
        clock.advance(600)
        assert 590 < _lead(phoenix_clock.now()) <= 600
    assert abs(_lead(phoenix_clock.now())) < 5
    # A world behind moto's server: its simulated time goes when the server stops
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    sim_time.passed(600)
    assert 590 < _lead(phoenix_clock.now()) <= 600
    server.stop()
    assert abs(_lead(phoenix_clock.now())) < 5
