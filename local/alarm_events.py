"""CloudWatch in the embedded AWS: alarm state changes become EventBridge events.

CloudWatch sends a `CloudWatch Alarm State Change` event (source `aws.cloudwatch`) to the
default event bus whenever an alarm's state changes; moto changes the state silently.
Here every change of state (by SetAlarmState or by an evaluation, local.alarm_evaluation)
is published in the shape of the CloudWatch user guide's sample events: `resources`
holds the alarm ARN, `detail` the alarm name, the new and previous state (value,
reason, reason data, timestamp) and the alarm's configuration (its metrics with their
namespace, name, dimensions, period and statistic; a metric math alarm's expressions,
labels and returnData).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from moto.cloudwatch.models import Alarm
from moto.events.models import events_backends
from moto.utilities.arns import parse_arn

DETAIL_TYPE = "CloudWatch Alarm State Change"


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _state(value: str, reason: str, reason_data: str | None, moment: datetime) -> dict[str, Any]:
    state = {"value": value, "reason": reason, "timestamp": _timestamp(moment)}
    if reason_data:
        state["reasonData"] = reason_data
    return state


def _metric(namespace: str, name: str, dimensions: Any) -> dict[str, Any]:
    return {
        "dimensions": {str(d.name): str(d.value) for d in dimensions or []},
        "name": name,
        "namespace": namespace,
    }


def _query(query: Any) -> dict[str, Any]:
    """One entry of `configuration.metrics`, as in AWS's metric math sample event."""
    entry: dict[str, Any] = {"id": query.id}
    if query.expression:
        entry["expression"] = query.expression
    if query.label:
        entry["label"] = query.label
    if query.metric_stat is not None:
        stat = query.metric_stat
        entry["metricStat"] = {
            "metric": _metric(
                stat.metric.namespace, stat.metric.metric_name, stat.metric.dimensions
            ),
            "period": int(stat.period),
            "stat": stat.stat,
        }
    entry["returnData"] = str(query.return_data).lower() != "false"
    return entry


def _configuration(alarm: Alarm) -> dict[str, Any]:
    """The alarm's `configuration`: its description and metrics, with each metric's
    namespace, name, dimensions (an object), period and statistic, and a metric math
    alarm's expressions and labels (CloudWatch user guide, "Alarm events and
    EventBridge", the sample events)."""
    configuration: dict[str, Any] = {"description": alarm.description or ""}
    if alarm.metric_data_queries:
        configuration["metrics"] = [_query(query) for query in alarm.metric_data_queries]
    else:
        configuration["metrics"] = [
            {
                # AWS names the one metric of a single-metric alarm with a generated id.
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, alarm.alarm_arn)),
                "metricStat": {
                    "metric": _metric(alarm.namespace, alarm.metric_name, alarm.dimensions),
                    "period": int(alarm.period),
                    "stat": alarm.statistic or alarm.extended_statistic,
                },
                "returnData": True,
            }
        ]
    return configuration


def state_change_event(alarm: Alarm, previous: dict[str, Any]) -> dict[str, Any]:
    """The PutEvents entry CloudWatch would send for `alarm`'s latest change."""
    detail = {
        "alarmName": alarm.name,
        "state": _state(
            alarm.state_value,
            alarm.state_reason,
            alarm.state_reason_data,
            alarm.state_updated_timestamp,
        ),
        "previousState": previous,
        "configuration": _configuration(alarm),
    }
    return {
        "Source": "aws.cloudwatch",
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [alarm.alarm_arn],
        "EventBusName": "default",
    }


@functools.cache
def install() -> None:
    """Publish alarm state changes to EventBridge (once per process)."""
    Alarm.update_state = _publishing(Alarm.update_state)  # type: ignore[method-assign]


def _publishing(update: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(update)
    def updated(self: Alarm, reason: str, reason_data: str, state_value: str) -> None:
        previous = _state(
            self.state_value,
            self.state_reason,
            self.state_reason_data,
            self.state_updated_timestamp,
        )
        update(self, reason, reason_data, state_value)
        if previous["value"] == state_value:
            return
        arn = parse_arn(self.alarm_arn)
        events_backends[arn.account][arn.region].put_events([state_change_event(self, previous)])

    return updated
