"""The application model: what the instances serving a fleet would do, from their AMI.

Every AMI the rehearsal bakes carries a health profile (tag `phoenix:health`): healthy,
failing, erroring, degrading, flaky, cart or slow; an AMI without the tag is healthy. From it:
- target health: an instance from a failing AMI fails the load balancer's health
  checks (`unhealthy`, `Target.FailedHealthChecks`), as the application would; a
  terminated instance is `draining` (moto would keep calling it healthy);
- traffic: each time `advance(seconds)` runs, every load balancer's listener splits a
  steady request rate between its target groups by weight, and the model publishes
  the ALB metrics CloudWatch would (RequestCount, HTTPCode_Target_5XX_Count,
  TargetResponseTime, UnHealthyHostCount) per target group and per load balancer. A target
  group whose targets are all unhealthy still gets its share (ALB fails open), so a
  failing AMI's requests come back 5xx; an erroring AMI passes its health checks but
  answers half of its requests with 5xx (a bad release a health check misses); a
  degrading AMI serves well for its first 12 minutes of traffic, then errors so (a
  leak, found after the release); a flaky AMI answers 2% with 5xx, under the alarms'
  threshold (only the canary judgment sees it); a cart AMI serves every request well
  but fails a fifth of its checkouts (only the application's own metric shows it); a
  slow AMI answers in 2.5 s. Each
  minute's counts and latency are drawn with noise around the profile's; the
  application also publishes its own metric, the rate of failed checkouts per Auto
  Scaling group;
- alarms: after each minute's datapoints, every metric alarm of the region is
  evaluated from its own definition (local.alarm_evaluation: its metrics or metric
  math, statistic, period, M out of N, missing data); each change of state sends the
  CloudWatch event (local.alarm_events).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy
from moto.autoscaling.models import autoscaling_backends
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup, elbv2_backends

from local import alarm_evaluation
from local.imagebuilder import HEALTH_TAG

# Per listener: a 5% canary step of five minutes serves 1,500 requests, enough for the
# canary judgment (docs/judgment.md: fewer than 200 is no data).
REQUESTS_PER_MINUTE = 6000
LATENCY_SECONDS = {
    "healthy": 0.05,
    "slow": 2.5,
    "failing": 0.05,
    "erroring": 0.05,
    "flaky": 0.05,
    "cart": 0.05,
}
# A flaky AMI answers 2% of its requests with 5xx: under the alarms' 5% (config's
# error_rate_percent), so only the canary judgment, comparing it with the baseline, sees it.
ERROR_SHARE = {
    "healthy": 0.0,
    "slow": 0.0,
    "failing": 1.0,
    "erroring": 0.5,
    "flaky": 0.02,
    "cart": 0.0,
}
# The application's own metric, as its CloudWatch agent would publish it per Auto Scaling
# group (the agent's append_dimensions AutoScalingGroupName): the share of the minute's
# checkouts that failed, in percent (a rate, so slots of unequal traffic compare), one
# request in ten being a checkout.
APP_NAMESPACE = "Rehearsal/Shop"
APP_METRIC = "CheckoutFailureRate"
CHECKOUT_SHARE = 0.1
# A cart AMI's checkouts fail a fifth of the time, with no 5xx and no slowness: no alarm
# fires, and only the judgment of the application's own metric sees it.
CHECKOUT_FAILURE = {
    "healthy": 0.005,
    "slow": 0.005,
    "failing": 1.0,
    "erroring": 0.5,
    "flaky": 0.05,
    "cart": 0.2,
}
# Each minute's numbers vary as a real application's do: requests by Poisson, 5xx and
# failed checkouts by binomial draws from the profile's shares, and the latency by a
# lognormal factor (about 10%). Seeded, so a run repeats itself.
LATENCY_SPREAD = 0.1
_noise = numpy.random.default_rng(20261202)
# A degrading AMI serves well at first, then errors like an erroring one (a leak): after
# this many minutes of traffic per instance.
DEGRADES_AFTER_MINUTES = 12
_served: dict[str, int] = {}
NAMESPACE = "AWS/ApplicationELB"


def image_health(ec2: Any, image_id: str) -> str:
    """The health profile of an AMI (healthy when it has none)."""
    image = ec2.amis.get(image_id)
    if image is None:
        return "healthy"
    tags = ec2.describe_tags(filters={"resource-id": [image_id]})
    return next((t["value"] for t in tags if t["key"] == HEALTH_TAG), "healthy")


def instance_health(account: str, region: str, instance_id: str) -> str | None:
    """The health profile of a running instance's AMI (a degrading one as it is now);
    None once it no longer runs."""
    ec2 = ec2_backends[account][region]
    instance = ec2.get_instance_by_id(instance_id)
    if instance is None or instance.state != "running":
        return None
    profile = image_health(ec2, instance.image_id)
    if profile == "degrading":
        worn = _served.get(instance_id, 0) >= DEGRADES_AFTER_MINUTES
        return "erroring" if worn else "healthy"
    return profile


@dataclass(frozen=True)
class GroupTraffic:
    """One target group's minute: what the ALB would measure, and the application's
    failed checkouts."""

    requests: float
    errors: float
    latency: float
    unhealthy: int
    checkouts: int = 0
    failed_checkouts: int = 0


def target_group_traffic(
    backend: ELBv2Backend, group: FakeTargetGroup, requests: float
) -> GroupTraffic:
    ids = [t["Id"] for t in group.targets.values() if str(t["Id"]).startswith("i-")]
    if requests:
        for instance_id in ids:
            _served[instance_id] = _served.get(instance_id, 0) + 1
    found = [instance_health(backend.account_id, backend.region_name, i) for i in ids]
    profiles = [p for p in found if p is not None]
    unhealthy = profiles.count("failing")
    if not profiles:
        return GroupTraffic(0.0, 0.0, 0.0, 0)
    healthy = [p for p in profiles if p != "failing"]
    serving = healthy or profiles  # ALB fails open when every target is unhealthy
    served = int(_noise.poisson(requests)) if requests else 0
    errors = _drawn(served, sum(ERROR_SHARE[p] for p in serving) / len(serving))
    checkouts = _drawn(served, CHECKOUT_SHARE)
    failed = _drawn(checkouts, sum(CHECKOUT_FAILURE[p] for p in serving) / len(serving))
    latency = max(LATENCY_SECONDS[p] for p in serving) * float(_noise.lognormal(0, LATENCY_SPREAD))
    return GroupTraffic(float(served), float(errors), latency, unhealthy, checkouts, failed)


def _drawn(trials: int, share: float) -> int:
    """How many of `trials` turn out so, each with probability `share`."""
    return int(_noise.binomial(trials, min(1.0, share))) if trials and share else 0


def _dimension(arn: str) -> str:
    """The CloudWatch dimension value of a load balancer (`app/name/id`) or target group
    (`targetgroup/name/id`)."""
    resource = arn.rsplit(":", 1)[1]
    return resource.removeprefix("loadbalancer/")


def _traffic(backend: ELBv2Backend) -> dict[str, tuple[str, GroupTraffic]]:
    """Each target group's traffic this minute, with the name of its load balancer."""
    traffic: dict[str, tuple[str, GroupTraffic]] = {}
    for balancer in backend.load_balancers.values():
        for listener in balancer.listeners.values():
            weights: dict[str, int] = {}
            for action in listener.default_actions:
                data = action.data
                for group in data.get("ForwardConfig", {}).get("TargetGroups", []):
                    weights[group["TargetGroupArn"]] = int(group.get("Weight", 1))
                if data.get("TargetGroupArn"):
                    weights[data["TargetGroupArn"]] = 1
            total = sum(weights.values())
            for arn, weight in weights.items():
                group = backend.target_groups.get(arn)
                if group is None:
                    continue
                share = REQUESTS_PER_MINUTE * weight / total if total else 0.0
                traffic[arn] = (balancer.arn, target_group_traffic(backend, group, share))
    return traffic


def _publish(account: str, region: str, traffic: dict[str, tuple[str, GroupTraffic]]) -> None:
    """The minute's datapoints, per target group (dimensions TargetGroup and
    LoadBalancer) and per load balancer (LoadBalancer only), as an Application Load
    Balancer publishes them (Elastic Load Balancing user guide, "CloudWatch metrics for
    your Application Load Balancer": metric dimensions). UnHealthyHostCount is per target
    group only. A load balancer's TargetResponseTime gets each target group's latency as
    a value, so its percentiles span them."""
    cloudwatch = cloudwatch_backends[account][region]
    now = utcnow()
    data: list[dict[str, Any]] = []
    by_balancer: dict[str, list[GroupTraffic]] = {}
    for group_arn, (balancer_arn, minute) in traffic.items():
        by_balancer.setdefault(balancer_arn, []).append(minute)
        dimensions = [
            {"Name": "LoadBalancer", "Value": _dimension(balancer_arn)},
            {"Name": "TargetGroup", "Value": _dimension(group_arn)},
        ]
        values = {
            "RequestCount": minute.requests,
            "HTTPCode_Target_5XX_Count": minute.errors,
            "UnHealthyHostCount": float(minute.unhealthy),
        }
        if minute.requests:
            values["TargetResponseTime"] = minute.latency
        data += [{"MetricName": n, "Value": v, "Dimensions": dimensions} for n, v in values.items()]
    for balancer_arn, minutes in by_balancer.items():
        dimensions = [{"Name": "LoadBalancer", "Value": _dimension(balancer_arn)}]
        totals = {
            "RequestCount": sum(m.requests for m in minutes),
            "HTTPCode_Target_5XX_Count": sum(m.errors for m in minutes),
        }
        data += [{"MetricName": n, "Value": v, "Dimensions": dimensions} for n, v in totals.items()]
        data += [
            {"MetricName": "TargetResponseTime", "Value": m.latency, "Dimensions": dimensions}
            for m in minutes
            if m.requests
        ]
    cloudwatch.put_metric_data(NAMESPACE, [d | {"Timestamp": now} for d in data])
    checkouts = [
        {
            "MetricName": APP_METRIC,
            "Value": 100 * traffic[arn][1].failed_checkouts / traffic[arn][1].checkouts,
            "Dimensions": [{"Name": "AutoScalingGroupName", "Value": name}],
            "Timestamp": now,
        }
        for name, arn in _groups_serving(account, region)
        if arn in traffic and traffic[arn][1].checkouts
    ]
    if checkouts:
        cloudwatch.put_metric_data(APP_NAMESPACE, checkouts)


def _groups_serving(account: str, region: str) -> list[tuple[str, str]]:
    """(Auto Scaling group, its target group) for each group behind one target group."""
    groups = autoscaling_backends[account][region].autoscaling_groups.values()
    return [(g.name, g.target_group_arns[0]) for g in groups if len(g.target_group_arns) == 1]


def advance(account: str, region: str) -> None:
    """One minute of traffic for every load balancer: metrics published, alarms evaluated."""
    backend = elbv2_backends[account][region]
    traffic = _traffic(backend)
    if not traffic:
        return
    _publish(account, region, traffic)
    alarm_evaluation.evaluate_region(account, region, utcnow())


@functools.cache
def install() -> None:
    """Make target health follow each instance's AMI (once per process)."""
    FakeTargetGroup.health_for = _following_the_image(FakeTargetGroup.health_for)  # type: ignore[method-assign]


def _following_the_image(health_for: Callable[..., FakeHealthStatus]) -> Callable[..., Any]:
    @functools.wraps(health_for)
    def health(self: FakeTargetGroup, target: dict[str, Any], ec2_backend: Any) -> FakeHealthStatus:
        status = health_for(self, target, ec2_backend)
        if status.status != "healthy" or not str(target["Id"]).startswith("i-"):
            return status
        instance = ec2_backend.get_instance_by_id(target["Id"])
        if instance is None or instance.state in {"shutting-down", "terminated"}:
            # Auto Scaling deregisters an instance it terminates; moto leaves it
            # registered and reports it healthy.
            return FakeHealthStatus(
                status.instance_id,
                status.port,
                status.health_check_port,
                "draining",
                "Target.DeregistrationInProgress",
                "Target deregistration is in progress",
            )
        if instance and image_health(ec2_backend, instance.image_id) == "failing":
            return FakeHealthStatus(
                status.instance_id,
                status.port,
                status.health_check_port,
                "unhealthy",
                "Target.FailedHealthChecks",
                "Health checks failed",
            )
        return status

    return health


def minutes(seconds: float) -> int:
    """How many one-minute traffic steps `seconds` of simulated time holds (at least one)."""
    return max(1, math.floor(seconds / 60))
