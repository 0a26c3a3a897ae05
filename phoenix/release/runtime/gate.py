"""Health gates: are the new targets healthy, are the alarms OK, and for canary, is the
canary no worse than the baseline (docs/architecture.md, The release: gates).

One DescribeTargetHealth, one DescribeInstances, one DescribeAlarms and (canary) one
GetMetricData, whatever the number of instances.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from phoenix.kernel.fleet_calls import alarms_in_alarm
from phoenix.kernel.metrics import (
    ERRORS,
    NAMESPACE,
    P99_LATENCY,
    REQUESTS,
)
from phoenix.kernel.models import SlotSpec
from phoenix.release.runtime.judgment import (
    Counts,
    Policy,
    Rule,
    Samples,
    StepJudgment,
    judge_counts,
    judge_samples,
    score_step,
)
from phoenix.release.runtime.models import CustomMetricSpec, FleetSpec, JudgmentSpec, ReleaseState

if TYPE_CHECKING:
    from types_boto3_cloudwatch.client import CloudWatchClient
    from types_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDataQueryTypeDef
    from types_boto3_ec2.client import EC2Client
    from types_boto3_elbv2.client import ElasticLoadBalancingv2Client


class GateFailedError(Exception):
    """The release is not healthy: the message names what failed."""


def target_health(
    elbv2: ElasticLoadBalancingv2Client, target_group: str
) -> tuple[dict[str, int], dict[str, int | None]]:
    """How many of a target group's targets are in each state, and the healthy ones:
    instance id -> port, in the order the load balancer lists them."""
    descriptions = elbv2.describe_target_health(TargetGroupArn=target_group)
    counts: dict[str, int] = {}
    healthy: dict[str, int | None] = {}
    for description in descriptions["TargetHealthDescriptions"]:
        state = description["TargetHealth"]["State"]
        counts[state] = counts.get(state, 0) + 1
        if state == "healthy":
            healthy[description["Target"]["Id"]] = description["Target"].get("Port")
    return counts, healthy


def on_ami(ec2: EC2Client, instance_ids: list[str], ami: str) -> list[str]:
    """Those of the instances that run `ami` (one DescribeInstances; none for no ids)."""
    if not instance_ids:
        return []
    found = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    return [i["InstanceId"] for r in found for i in r["Instances"] if i.get("ImageId") == ami]


def warmed_up(
    elbv2: ElasticLoadBalancingv2Client, ec2: EC2Client, state: ReleaseState
) -> tuple[bool, str]:
    """Every instance the target slot should have is registered, healthy and on the new
    AMI (a healthy target of an older AMI, still draining or not yet replaced, does not
    count)."""
    plan = state.need_plan()
    counts, healthy = target_health(elbv2, state.fleet_spec.slots[plan.target_slot].target_group)
    new = len(on_ami(ec2, list(healthy), state.ami))
    wanted = plan.capacity.desired
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no targets"
    return new >= wanted, f"{new} of {wanted} targets healthy on {state.ami} ({summary})"


def _query_id(role: str, metric: str) -> str:
    return f"{role}_{metric.lower().replace('_', '')}"


def _dimension(arn: str) -> str:
    return arn.rsplit(":", 1)[1].removeprefix("loadbalancer/")


def _load_balancer(spec: FleetSpec) -> str:
    """The CloudWatch dimension value (`app/name/id`) of the fleet's load balancer, from
    its listener's ARN."""
    return "/".join(spec.listener.rsplit(":", 1)[1].split("/")[1:4])


def _custom_query(
    spec: FleetSpec, metric: CustomMetricSpec, query_id: str, slot: SlotSpec
) -> MetricDataQueryTypeDef:
    """A custom metric's per-minute query for one slot, its placeholders filled."""
    filled = {
        "{target_group}": _dimension(slot.target_group),
        "{load_balancer}": _load_balancer(spec),
        "{auto_scaling_group}": slot.group,
    }
    dimensions: list[DimensionTypeDef] = [
        {"Name": name, "Value": filled.get(value, value)}
        for name, value in metric.dimensions.items()
    ]
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": metric.namespace,
                "MetricName": metric.metric,
                "Dimensions": dimensions,
            },
            "Period": 60,
            "Stat": metric.statistic,
        },
    }


def _queries(
    spec: FleetSpec, slots: dict[str, SlotSpec], step_seconds: int
) -> list[MetricDataQueryTypeDef]:
    """Per side: the step's 5xx and requests (one period, the whole step), the p99
    latency of each minute, and each custom metric's value of each minute."""
    queries: list[MetricDataQueryTypeDef] = []
    for role, slot in slots.items():
        dimensions: list[DimensionTypeDef] = [
            {"Name": "LoadBalancer", "Value": _load_balancer(spec)},
            {"Name": "TargetGroup", "Value": _dimension(slot.target_group)},
        ]
        for metric, period in ((ERRORS, step_seconds), (REQUESTS, step_seconds), (P99_LATENCY, 60)):
            queries.append(
                {
                    "Id": _query_id(role, metric.name),
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": metric.name,
                            "Dimensions": dimensions,
                        },
                        "Period": period,
                        "Stat": metric.statistic,
                    },
                }
            )
        for number, custom in enumerate(spec.judgment.metrics):
            queries.append(_custom_query(spec, custom, f"{role}_custom{number}", slot))
    return queries


def judge_canary(
    cloudwatch: CloudWatchClient, state: ReleaseState, since: datetime, until: datetime
) -> StepJudgment:
    """The canary slot against the baseline (the active slot) since the step began
    (judgment.py, docs/judgment.md): the 5xx rate from the step's counts, and the p99
    latency and each custom metric from their values of each minute."""
    plan = state.need_plan()
    spec = state.fleet_spec
    seconds = max(60, int((until - since).total_seconds()))
    slots = {"canary": spec.slots[plan.target_slot], "baseline": spec.slots[plan.active_slot]}
    response = cloudwatch.get_metric_data(
        MetricDataQueries=_queries(spec, slots, 60 * ((seconds + 59) // 60)),
        StartTime=since - timedelta(seconds=1),
        EndTime=until + timedelta(seconds=1),
    )
    values: dict[str, list[float]] = {
        r["Id"]: [float(v) for v in r.get("Values", []) if v is not None]
        for r in response["MetricDataResults"]
    }

    def total(role: str, metric: str) -> int:
        return round(sum(values.get(_query_id(role, metric), [])))

    def p99s_ms(role: str) -> tuple[float, ...]:
        return tuple(1000 * v for v in values.get(_query_id(role, P99_LATENCY.name), []))

    def custom(number: int) -> Samples:
        canary, baseline = (values.get(f"{role}_custom{number}", []) for role in slots)
        return Samples(tuple(canary), tuple(baseline))

    rules, policy = judged_by(spec.judgment)
    counts = Counts(
        total("canary", ERRORS.name),
        total("canary", REQUESTS.name),
        total("baseline", ERRORS.name),
        total("baseline", REQUESTS.name),
    )
    judged = [
        judge_counts(rules[0], counts, policy),
        judge_samples(rules[1], Samples(p99s_ms("canary"), p99s_ms("baseline")), policy),
    ]
    judged += [judge_samples(rule, custom(n), policy) for n, rule in enumerate(rules[2:])]
    return score_step(rules, judged, policy)


def extensions_left(state: ReleaseState) -> int:
    """How many more times this step's bake may be extended: the fleet's `extensions`,
    less those this step already had (the last gate's answer, `$.gate`, while the step is
    the same)."""
    previous = getattr(state, "gate", None)
    if isinstance(previous, dict) and previous.get("extend") and "extensions_left" in previous:
        return int(previous["extensions_left"])
    return state.fleet_spec.judgment.extensions


def judged_by(judgment: JudgmentSpec) -> tuple[list[Rule], Policy]:
    """The rules (5xx rate, p99 latency, then the custom metrics in the config's order)
    and the policy a fleet's judgment uses."""
    policy = Policy(
        confidence=judgment.confidence,
        pass_score=judgment.pass_score,
        marginal_score=judgment.marginal_score,
        min_requests=judgment.min_requests,
        min_samples=judgment.min_periods,
    )
    rules = [
        Rule("5xx rate", **judgment.errors.model_dump()),
        Rule("p99 latency", unit=" ms", **judgment.latency.model_dump()),
    ]
    rules += [
        Rule(m.name, m.direction, m.allowed_ratio, m.critical, m.weight) for m in judgment.metrics
    ]
    return rules, policy


def recorded(step: StepJudgment) -> dict[str, Any]:
    """What the ledger and the step's event keep of a judgment: the score, the outcome,
    and per metric (`judged`) its values, statistic, p-value, ratio and verdict."""
    return {
        "outcome": step.outcome,
        "score": round(step.score, 2),
        "judged": [
            {
                "name": j.name,
                "verdict": j.verdict,
                **({"test": j.test} if j.test else {}),
                **{
                    name: round(value, 6) if math.isfinite(value) else str(value)
                    for name, value in (
                        ("canary", j.canary),
                        ("baseline", j.baseline),
                        ("statistic", j.statistic),
                        ("p_value", j.p_value),
                        ("ratio", j.ratio),
                    )
                    if value is not None
                },
                "why": j.why,
            }
            for j in step.metrics
        ],
    }


def judge(
    elbv2: ElasticLoadBalancingv2Client,
    ec2: EC2Client,
    cloudwatch: CloudWatchClient,
    state: ReleaseState,
    until: datetime,
) -> tuple[str, StepJudgment | None]:
    """The gate after a step: raises GateFailedError when targets are unhealthy or an
    alarm fires; else the targets' summary and, for a canary step that kept a baseline,
    the canary's judgment (which the caller records, and fails the step unless it passed)."""
    healthy, targets = warmed_up(elbv2, ec2, state)
    if not healthy:
        raise GateFailedError(f"new targets not healthy: {targets}")
    firing = alarms_in_alarm(cloudwatch, state.fleet_spec.alarms)
    if firing:
        raise GateFailedError(f"alarms in ALARM: {', '.join(firing)}")
    step = state.step
    if state.fleet_spec.strategy == "canary" and step is not None and step.weights.active > 0:
        judged = judge_canary(cloudwatch, state, step.at, until)
        return targets, judged
    return targets, None
