"""The environment's CloudWatch dashboard, one per stack that holds fleets, and the alarm
on failed releases.

The region's stack's dashboard (`phoenix-<env>`) opens with the releases: outcomes per
hour, release duration, time to rollback and canary judgment scores, from the metrics
phoenix's functions publish under `Phoenix/<env>` (Powertools, one `service` dimension
per function; kernel/settings.py). Then, per fleet, the 5xx rate and the p99 latency of
each slot, from the same metric definitions as the fleet's alarms (fleet/alarms.py).
A fleet stack's dashboard (`phoenix-<env>-fleets-<n>`) holds its fleets' rows: a
dashboard holds at most 500 widgets (CloudWatch quotas), so per-fleet rows stay with the
stack their fleets are in (at most twelve fleets, two widgets each).

`phoenix-<env>--releases-failed` goes to ALARM when a release fails (the Release Failed
path: the fleet left for a person); its name matches the notification rule of the
environment's alarms, which tells people as text (platform/notifications.py), and no
fleet (a fleet's name cannot begin with `-`), so nothing rolls back on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from phoenix.fleet.immutable_fleet import ImmutableFleet
from phoenix.kernel.settings import metrics_namespace

HOUR = Duration.hours(1)
# The functions that publish each release metric (their Powertools service names).
CLOSERS = ("phoenix-release-finalize", "phoenix-release-cleanup")
GATE, ROLLBACK = "phoenix-release-gate", "phoenix-rollback"


def _metric(
    environment: str, name: str, service: str, statistic: str, period: Duration = HOUR
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=metrics_namespace(environment),
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=period,
        label=name,
    )


def _sum_of_closers(environment: str, name: str, period: Duration = HOUR) -> cloudwatch.IMetric:
    """A release metric's sum over the functions that close releases (FILL: none is 0)."""
    # ids unique in a graph that sums several metrics this way
    metrics = {
        f"{name.lower()}{n}": _metric(environment, name, service, "Sum", period)
        for n, service in enumerate(CLOSERS)
    }
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({m}, 0)" for m in metrics),
        using_metrics=metrics,
        label=name,
        period=period,
    )


def _per_slot(metric: cloudwatch.IMetric, slot: str) -> cloudwatch.IMetric:
    """The alarm's metric as one line of a graph of several slots: a math expression's
    ids (the same in every slot's) suffixed with the slot, its definition unchanged."""
    if not isinstance(metric, cloudwatch.MathExpression):
        return metric
    text, renamed = metric.expression, {}
    for name, used in metric.using_metrics.items():
        text = re.sub(rf"\b{name}\b", f"{name}_{slot}", text)
        renamed[f"{name}_{slot}"] = used
    return cloudwatch.MathExpression(
        expression=text, using_metrics=renamed, label=slot, period=metric.period
    )


def fleet_rows(fleets: Iterable[ImmutableFleet]) -> list[cloudwatch.IWidget]:
    """Per fleet: each slot's 5xx rate and p99 latency (the alarms' own metrics)."""
    widgets: list[cloudwatch.IWidget] = []
    for fleet in fleets:
        name = fleet.config.name
        widgets.append(
            cloudwatch.GraphWidget(
                title=f"{name}: 5xx rate (%) per slot",
                left=[_per_slot(fleet.metric_error_rate(slot), slot) for slot in fleet.slots],
                width=12,
            )
        )
        widgets.append(
            cloudwatch.GraphWidget(
                title=f"{name}: p99 latency (s) per slot",
                left=[fleet.metric_p99_latency(slot) for slot in fleet.slots],
                width=12,
            )
        )
    return widgets


class EnvironmentDashboard(Construct):
    """The region stack's dashboard and the alarm on failed releases (see the module)."""

    def __init__(
        self, scope: Construct, id: str, *, environment: str, fleets: Iterable[ImmutableFleet]
    ) -> None:
        super().__init__(scope, id)
        region = Stack.of(self).region
        metric = _metric
        releases = [
            _sum_of_closers(environment, name)
            for name in ("ReleasesSucceeded", "ReleasesRolledBack", "ReleasesFailed")
        ]
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"phoenix-{environment}"
            + ("" if Token.is_unresolved(region) else f"-{region}"),
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title="releases per hour, by outcome", left=releases, stacked=True, width=12
                    ),
                    cloudwatch.GraphWidget(
                        title="release duration (s)",
                        left=[
                            metric(environment, "ReleaseDuration", CLOSERS[0], "Average"),
                            metric(environment, "ReleaseDuration", CLOSERS[0], "Maximum"),
                        ],
                        width=12,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="time to rollback (s): alarm to traffic back",
                        left=[
                            metric(environment, "TimeToRollback", ROLLBACK, "Maximum"),
                            metric(environment, "TimeToRollback", ROLLBACK, "p50"),
                        ],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="canary judgment scores (0-100)",
                        left=[
                            metric(environment, "CanaryJudgmentScore", GATE, "Minimum"),
                            metric(environment, "CanaryJudgmentScore", GATE, "Average"),
                        ],
                        width=12,
                    ),
                ],
                fleet_rows(fleets),
            ],
        )
        self.failed_releases = cloudwatch.Alarm(
            self,
            "FailedReleases",
            alarm_name=f"phoenix-{environment}--releases-failed",
            alarm_description=f"phoenix {environment}: a release failed and left its fleet "
            "for a person (phoenix status; phoenix history <fleet>)",
            metric=_sum_of_closers(environment, "ReleasesFailed", Duration.minutes(5)),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


class FleetsDashboard(Construct):
    """A fleet stack's dashboard: its fleets' rows."""

    def __init__(
        self, scope: Construct, id: str, *, name: str, fleets: Iterable[ImmutableFleet]
    ) -> None:
        super().__init__(scope, id)
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=name, widgets=[fleet_rows(fleets)]
        )
