"""The Application Load Balancer metrics phoenix judges a slot by, defined once: the
fleet's alarms (CloudFormation) and the canary gate (GetMetricData) use these."""

from __future__ import annotations

from typing import NamedTuple

NAMESPACE = "AWS/ApplicationELB"


class MetricStat(NamedTuple):
    name: str
    statistic: str


ERRORS = MetricStat("HTTPCode_Target_5XX_Count", "Sum")
REQUESTS = MetricStat("RequestCount", "Sum")
P99_LATENCY = MetricStat("TargetResponseTime", "p99")
# The 5xx rate in percent of requests, as CloudWatch metric math over `errors` and
# `requests`: no requests is no error rate, and a period without 5xx counts as 0.
ERROR_RATE_EXPRESSION = "IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)"
