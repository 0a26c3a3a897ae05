"""A fleet's alarms: what "unhealthy" means, per slot and for the whole fleet.

Release gates and the rollback rule read these alarms, so their names are a contract:
`phoenix-<env>-<fleet>-<slot>-<what>` for a slot and `phoenix-<env>-<fleet>-<what>` for
the fleet, where <what> is `5xx-rate`, `p99-latency` or `unhealthy-hosts`.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from phoenix.config.environment import FleetConfig
from phoenix.kernel.metrics import ERROR_RATE_EXPRESSION, ERRORS, P99_LATENCY, REQUESTS
from phoenix.kernel.names import Slot, resource_name

PERIOD = Duration.minutes(1)


class FleetAlarms(Construct):
    """Error rate, p99 latency and unhealthy hosts for each slot and for the fleet.

    Thresholds and evaluation periods come from `config.alarms`. A slot or fleet with no
    traffic is healthy (missing data does not breach). An alarm has no action of its own:
    going to ALARM, it rolls the fleet back through EventBridge (phoenix/rollback/), and
    the environment's notification rules tell people in a line of text
    (phoenix/platform/notifications.py), not the alarm's raw JSON.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: str,
        config: FleetConfig,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_groups: Mapping[Slot, elbv2.ApplicationTargetGroup],
    ) -> None:
        super().__init__(scope, id)
        self._environment = environment
        self._config = config
        self._load_balancer = load_balancer
        self._target_groups = dict(target_groups)
        self.by_scope: dict[Slot | None, list[cloudwatch.Alarm]] = {}
        for slot in [*self._target_groups, None]:
            self.by_scope[slot] = self._alarms_for(slot)

    @property
    def all(self) -> list[cloudwatch.Alarm]:
        return [alarm for alarms in self.by_scope.values() for alarm in alarms]

    def metric_error_rate(self, slot: Slot | None) -> cloudwatch.IMetric:
        metrics = self._target_groups[slot].metrics if slot else self._load_balancer.metrics
        return cloudwatch.MathExpression(
            expression=ERROR_RATE_EXPRESSION,
            using_metrics={
                "errors": metrics.custom(ERRORS.name, period=PERIOD, statistic=ERRORS.statistic),
                "requests": metrics.custom(
                    REQUESTS.name, period=PERIOD, statistic=REQUESTS.statistic
                ),
            },
            label="5xx responses (% of requests)",
            period=PERIOD,
        )

    def metric_p99_latency(self, slot: Slot | None) -> cloudwatch.IMetric:
        metrics = self._target_groups[slot].metrics if slot else self._load_balancer.metrics
        return metrics.custom(P99_LATENCY.name, period=PERIOD, statistic=P99_LATENCY.statistic)

    def metric_unhealthy_hosts(self, slot: Slot | None) -> cloudwatch.IMetric:
        if slot:
            return self._target_groups[slot].metrics.unhealthy_host_count(
                period=PERIOD, statistic="Maximum"
            )
        per_slot = {
            f"unhealthy_{name}": group.metrics.unhealthy_host_count(
                period=PERIOD, statistic="Maximum"
            )
            for name, group in self._target_groups.items()
        }
        return cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({name}, 0)" for name in per_slot),
            using_metrics=per_slot,
            label="unhealthy targets",
            period=PERIOD,
        )

    def _alarms_for(self, slot: Slot | None) -> list[cloudwatch.Alarm]:
        thresholds = self._config.alarms
        scope = slot or "fleet"
        return [
            self._alarm(
                f"{scope}-5xx-rate",
                slot=slot,
                metric=self.metric_error_rate(slot),
                threshold=thresholds.error_rate_percent,
                what=f"5xx responses above {thresholds.error_rate_percent}% of requests",
            ),
            self._alarm(
                f"{scope}-p99-latency",
                slot=slot,
                metric=self.metric_p99_latency(slot),
                threshold=thresholds.p99_latency_ms / 1000,
                what=f"p99 response time above {thresholds.p99_latency_ms} ms",
            ),
            self._alarm(
                f"{scope}-unhealthy-hosts",
                slot=slot,
                metric=self.metric_unhealthy_hosts(slot),
                threshold=thresholds.unhealthy_hosts,
                what=f"{thresholds.unhealthy_hosts} or more unhealthy targets",
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            ),
        ]

    def _alarm(
        self,
        id: str,
        *,
        slot: Slot | None,
        metric: cloudwatch.IMetric,
        threshold: float,
        what: str,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        ),
    ) -> cloudwatch.Alarm:
        suffix = id.split("-", 1)[1]
        parts = (slot, suffix) if slot else (suffix,)
        name = resource_name(self._environment, self._config.name, *parts)
        where = f"slot {slot}" if slot else "the whole fleet"
        return cloudwatch.Alarm(
            self,
            id,
            alarm_name=name,
            alarm_description=f"phoenix {self._environment}/{self._config.name}, {where}: {what}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=self._config.alarms.evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
