"""Health gates: are the new targets healthy, are the alarms OK, and for canary, is the
canary no worse than the baseline (docs/architecture.md, The release: gates).

One DescribeTargetHealth, one DescribeInstances, one DescribeAlarms and (canary) one
GetMetricData, whatever the number of instances.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from phoenix.kernel.fleet_calls import alarms_in_alarm
from phoenix.kernel.metrics import (
    ERRORS,
    NAMESPACE,
    P99_LATENCY,
    REQUESTS,
    error_rate_percent,
)
from phoenix.release.runtime.models import FleetSpec, ReleaseState

if TYPE_CHECKING:
    from types_boto3_cloudwatch.client import CloudWatchClient
    from types_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDataQueryTypeDef
    from types_boto3_ec2.client import EC2Client
    from types_boto3_elbv2.client import ElasticLoadBalancingv2Client


class GateFailedError(Exception):
    """The release is not healthy: the message names what failed."""


def target_health(
    elbv2: ElasticLoadBalancingv2Client, target_group: str
) -> tuple[dict[str, int], list[str]]:
    """How many of a target group's targets are in each state, and the healthy ones."""
    descriptions = elbv2.describe_target_health(TargetGroupArn=target_group)
    counts: dict[str, int] = {}
    healthy: list[str] = []
    for description in descriptions["TargetHealthDescriptions"]:
        state = description["TargetHealth"]["State"]
        counts[state] = counts.get(state, 0) + 1
        if state == "healthy":
            healthy.append(description["Target"]["Id"])
    return counts, healthy


def on_ami(ec2: EC2Client, instance_ids: list[str], ami: str) -> int:
    """How many of the instances run `ami` (one DescribeInstances; none for no ids)."""
    if not instance_ids:
        return 0
    found = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    return sum(1 for r in found for i in r["Instances"] if i.get("ImageId") == ami)


def warmed_up(
    elbv2: ElasticLoadBalancingv2Client, ec2: EC2Client, state: ReleaseState
) -> tuple[bool, str]:
    """Every instance the target slot should have is registered, healthy and on the new
    AMI (a healthy target of an older AMI, still draining or not yet replaced, does not
    count)."""
    plan = state.need_plan()
    counts, healthy = target_health(elbv2, state.fleet_spec.slots[plan.target_slot].target_group)
    new = on_ami(ec2, healthy, state.ami)
    wanted = plan.capacity.desired
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no targets"
    return new >= wanted, f"{new} of {wanted} targets healthy on {state.ami} ({summary})"


def _query_id(role: str, metric: str) -> str:
    return f"{role}_{metric.lower().replace('_', '')}"


def _dimension(arn: str) -> str:
    return arn.rsplit(":", 1)[1].removeprefix("loadbalancer/")


def _queries(
    spec: FleetSpec, slot_groups: dict[str, str], period: int
) -> list[MetricDataQueryTypeDef]:
    listener_balancer = "/".join(spec.listener.rsplit(":", 1)[1].split("/")[1:4])
    queries: list[MetricDataQueryTypeDef] = []
    for role, group in slot_groups.items():
        dimensions: list[DimensionTypeDef] = [
            {"Name": "LoadBalancer", "Value": listener_balancer},
            {"Name": "TargetGroup", "Value": _dimension(group)},
        ]
        for metric, stat in (ERRORS, REQUESTS, P99_LATENCY):
            queries.append(
                {
                    "Id": _query_id(role, metric),
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": metric,
                            "Dimensions": dimensions,
                        },
                        "Period": period,
                        "Stat": stat,
                    },
                }
            )
    return queries


def judge_canary(
    cloudwatch: CloudWatchClient, state: ReleaseState, since: datetime, until: datetime
) -> tuple[bool, str]:
    """Canary versus baseline since the step began: 5xx rate and p99 latency.

    The canary fails when its error rate exceeds the fleet's threshold and the
    baseline's, or its p99 exceeds the latency threshold and the baseline's. With no
    canary requests yet there is nothing to judge, which passes (the alarms still gate).
    """
    plan = state.need_plan()
    spec = state.fleet_spec
    seconds = max(60, int((until - since).total_seconds()))
    period = 60 * ((seconds + 59) // 60)
    groups = {
        "canary": spec.slots[plan.target_slot].target_group,
        "baseline": spec.slots[plan.active_slot].target_group,
    }
    response = cloudwatch.get_metric_data(
        MetricDataQueries=_queries(spec, groups, period),
        StartTime=since - timedelta(seconds=1),
        EndTime=until + timedelta(seconds=1),
    )
    values: dict[str, list[float]] = {
        r["Id"]: [float(v) for v in r.get("Values", []) if v is not None]
        for r in response["MetricDataResults"]
    }

    def rate(role: str) -> float | None:
        return error_rate_percent(
            sum(values.get(_query_id(role, ERRORS.name), [])),
            sum(values.get(_query_id(role, REQUESTS.name), [])),
        )

    def p99_ms(role: str) -> float | None:
        found = values.get(_query_id(role, P99_LATENCY.name), [])
        return 1000 * max(found) if found else None

    canary_rate, baseline_rate = rate("canary"), rate("baseline")
    canary_p99, baseline_p99 = p99_ms("canary"), p99_ms("baseline")
    summary = (
        f"canary 5xx {_shown(canary_rate, '%')} p99 {_shown(canary_p99, ' ms')}; "
        f"baseline 5xx {_shown(baseline_rate, '%')} p99 {_shown(baseline_p99, ' ms')}"
    )
    if canary_rate is not None and canary_rate > max(spec.error_rate_percent, baseline_rate or 0):
        return False, f"canary error rate above {spec.error_rate_percent}% and baseline: {summary}"
    if canary_p99 is not None and canary_p99 > max(spec.p99_latency_ms, baseline_p99 or 0):
        return False, f"canary p99 above {spec.p99_latency_ms} ms and baseline: {summary}"
    return True, summary


def _shown(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.1f}{unit}"


def judge(
    elbv2: ElasticLoadBalancingv2Client,
    ec2: EC2Client,
    cloudwatch: CloudWatchClient,
    state: ReleaseState,
    until: datetime,
) -> str:
    """The gate after a step: raises GateFailedError with the reason, else a summary."""
    healthy, targets = warmed_up(elbv2, ec2, state)
    if not healthy:
        raise GateFailedError(f"new targets not healthy: {targets}")
    firing = alarms_in_alarm(cloudwatch, state.fleet_spec.alarms)
    if firing:
        raise GateFailedError(f"alarms in ALARM: {', '.join(firing)}")
    summary = targets
    step = state.step
    if state.fleet_spec.strategy == "canary" and step is not None and step.weights.active > 0:
        passed, metrics = judge_canary(cloudwatch, state, step.at, until)
        if not passed:
            raise GateFailedError(metrics)
        summary = f"{targets}; {metrics}"
    return summary
