"""The application model: an AMI's health profile drives targets, metrics and alarms."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from local import application, install_extensions, sim_time
from local.imagebuilder import Health, imagebuilder_backends
from phoenix.kernel.metrics import ERROR_RATE_EXPRESSION
from tests.local.eventbus import EventQueue

if TYPE_CHECKING:
    from types_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricTypeDef

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Fleet:
    listener: str
    blue: str
    green: str
    queue: EventQueue

    def weights(self, blue: int, green: int) -> None:
        boto3.client("elbv2", region_name=REGION).modify_listener(
            ListenerArn=self.listener,
            DefaultActions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": self.blue, "Weight": blue},
                            {"TargetGroupArn": self.green, "Weight": green},
                        ]
                    },
                }
            ],
        )

    def alarm_events(self) -> list[dict[str, Any]]:
        return self.queue.received()


def _serving(health: Health, subnet: str, group_arn: str) -> None:
    backend = imagebuilder_backends[ACCOUNT][REGION]
    image = backend.bake("phoenix-t-golden", "1.0.0", health, "arm64")
    ec2 = boto3.client("ec2", region_name=REGION)
    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=image.ami_id, MinCount=2, MaxCount=2, SubnetId=subnet)[
            "Instances"
        ]
    ]
    boto3.client("elbv2", region_name=REGION).register_targets(
        TargetGroupArn=group_arn, Targets=[{"Id": i} for i in ids]
    )


def _error_rate_alarm(name: str, group_arn: str, balancer_arn: str) -> None:
    dimensions: list[DimensionTypeDef] = [
        {"Name": "LoadBalancer", "Value": balancer_arn.split("loadbalancer/")[1]},
        {"Name": "TargetGroup", "Value": group_arn.rsplit(":", maxsplit=1)[-1]},
    ]

    def metric(name: str) -> MetricTypeDef:
        return {"Namespace": "AWS/ApplicationELB", "MetricName": name, "Dimensions": dimensions}

    boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
        AlarmName=name,
        ComparisonOperator="GreaterThanThreshold",
        EvaluationPeriods=2,
        Threshold=5.0,
        TreatMissingData="notBreaching",
        Metrics=[
            {"Id": "rate", "Expression": ERROR_RATE_EXPRESSION, "ReturnData": True},
            {
                "Id": "errors",
                "ReturnData": False,
                "MetricStat": {
                    "Metric": metric("HTTPCode_Target_5XX_Count"),
                    "Period": 60,
                    "Stat": "Sum",
                },
            },
            {
                "Id": "requests",
                "ReturnData": False,
                "MetricStat": {
                    "Metric": metric("RequestCount"),
                    "Period": 60,
                    "Stat": "Sum",
                },
            },
        ],
    )


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    with mock_aws():
        install_extensions(None)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}"
            )["Subnet"]["SubnetId"]
            for i, z in enumerate("ab")
        ]
        elbv2 = boto3.client("elbv2", region_name=REGION)
        balancer = elbv2.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0][
            "LoadBalancerArn"
        ]
        blue, green = [
            elbv2.create_target_group(Name=n, Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][
                0
            ]["TargetGroupArn"]
            for n in ("blue", "green")
        ]
        listener = elbv2.create_listener(
            LoadBalancerArn=balancer,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": blue, "Weight": 100},
                            {"TargetGroupArn": green, "Weight": 0},
                        ]
                    },
                }
            ],
        )["Listeners"][0]["ListenerArn"]
        _serving("healthy", subnets[0], blue)
        _serving("failing", subnets[0], green)
        _error_rate_alarm("phoenix-t-web-green-5xx-rate", green, balancer)
        _error_rate_alarm("phoenix-t-web-blue-5xx-rate", blue, balancer)
        queue = EventQueue.for_pattern("alarms", {"source": ["aws.cloudwatch"]})
        yield Fleet(listener, blue, green, queue)


def _a_minute() -> None:
    """A minute of traffic, a simulated minute after the last (one period each)."""
    sim_time.passed(60)
    application.advance(ACCOUNT, REGION)


def _states() -> dict[str, str]:
    alarms = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    return {a["AlarmName"]: a["StateValue"] for a in alarms}


def test_targets_from_a_failing_ami_fail_their_health_checks(fleet: Fleet) -> None:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    green = elbv2.describe_target_health(TargetGroupArn=fleet.green)["TargetHealthDescriptions"]
    blue = elbv2.describe_target_health(TargetGroupArn=fleet.blue)["TargetHealthDescriptions"]
    assert {(t["TargetHealth"]["State"], t["TargetHealth"].get("Reason")) for t in green} == {
        ("unhealthy", "Target.FailedHealthChecks")
    }
    assert {t["TargetHealth"]["State"] for t in blue} == {"healthy"}


def test_traffic_to_a_failing_slot_raises_its_alarm_after_its_evaluation_periods(
    fleet: Fleet,
) -> None:
    # Given all traffic on the healthy slot: nothing breaches
    _a_minute()
    assert _states() == {"phoenix-t-web-green-5xx-rate": "OK", "phoenix-t-web-blue-5xx-rate": "OK"}

    # When a canary step sends a quarter of the traffic to the failing slot
    fleet.weights(75, 25)
    _a_minute()
    assert _states()["phoenix-t-web-green-5xx-rate"] == "OK"  # one period of two
    _a_minute()

    # Then its alarm goes to ALARM (and sends the event), the healthy slot's does not
    assert _states() == {
        "phoenix-t-web-green-5xx-rate": "ALARM",
        "phoenix-t-web-blue-5xx-rate": "OK",
    }
    (event,) = fleet.alarm_events()
    assert event["detail"]["alarmName"] == "phoenix-t-web-green-5xx-rate"
    assert event["detail"]["state"]["value"] == "ALARM"

    # And when traffic is shifted back, the alarm returns to OK
    fleet.weights(100, 0)
    _a_minute()
    assert _states()["phoenix-t-web-green-5xx-rate"] == "OK"


def test_the_metrics_are_published_per_target_group(fleet: Fleet) -> None:
    fleet.weights(50, 50)
    _a_minute()
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    listed = cloudwatch.list_metrics(Namespace="AWS/ApplicationELB")["Metrics"]
    names = {m["MetricName"] for m in listed}
    assert {
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "TargetResponseTime",
        "UnHealthyHostCount",
    } <= names
