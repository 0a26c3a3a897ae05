"""CloudWatch metric alarms in the embedded AWS, evaluated from their own definitions.

moto stores an alarm and never evaluates it. Here, each simulated minute after the
application model publishes its datapoints (local.application), every metric alarm of
the region is evaluated as the CloudWatch user guide describes ("Using Amazon CloudWatch
alarms": "Alarm evaluation", "Configuring how CloudWatch alarms treat missing data";
"Metric math syntax and functions"):

- **Its metric, from its definition**: a single-metric alarm reads its namespace, metric
  name and exact dimensions with its `Statistic` or `ExtendedStatistic` (pNN) over its
  `Period`; a metric math alarm computes each `MetricStat` query the same way and then
  the expression of the query that returns data. The statistic of a period is moto's
  (local.api_gaps adds percentiles), the one GetMetricData answers with. Periods are
  aligned to the clock; the last one evaluated holds "now" (the application model
  stamps the minute it has just served with the current time).
- **Metric math**: numbers, the ids of other queries, `+ - * /`, comparisons (1 when
  true, 0 when false), unary minus, `IF(condition, a, b)` and `FILL(series, value)`.
  Between two series an operation has a value where both have one; `FILL` gives a value
  to every period of the evaluated range; `IF` takes the condition's periods. A division
  by zero has no value. Any other function or syntax is refused with an error naming the
  alarm (never guessed).
- **M out of N**: the alarm's last `EvaluationPeriods` periods (N) decide; it is in ALARM
  when at least `DatapointsToAlarm` (M, default N) of them breach its threshold with its
  comparison operator, OK otherwise.
- **Missing data** (`TreatMissingData`, default `missing`): `notBreaching` counts a
  missing period as within the threshold, `breaching` as breaching; with `ignore` and
  `missing` only the periods that have a value count, and when none has one the alarm
  keeps its state (`ignore`) or goes to INSUFFICIENT_DATA (`missing`).
- **State reason and data** as CloudWatch writes them (`Threshold Crossed: M out of the
  last N datapoints [...] was greater than the threshold (T) (minimum M datapoints for
  OK -> ALARM transition).`, with the reason data's `recentDatapoints`); each change of
  state sends the CloudWatch event (local.alarm_events).

Not emulated: anomaly detection and composite alarms, metric math functions beyond the
ones above, the evaluation delay CloudWatch adds for late data, and
`EvaluateLowSampleCountPercentile`.
"""

from __future__ import annotations

import json
import operator
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch.models import Alarm, CloudWatchBackend, Statistics, cloudwatch_backends

from local.metric_math import Expression, Series, UnsupportedAlarmError


@dataclass(frozen=True)
class Evaluation:
    state: str
    reason: str
    reason_data: str


_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}


def _period_start(moment: datetime, period: int) -> datetime:
    seconds = int(moment.replace(tzinfo=UTC).timestamp())
    return datetime.fromtimestamp(seconds - seconds % period, tz=UTC)


def _periods(now: datetime, period: int, count: int) -> list[datetime]:
    """The `count` periods that end with the one holding `now`, oldest first."""
    last = _period_start(now, period)
    return [last - timedelta(seconds=period * back) for back in range(count - 1, -1, -1)]


def _dimensions(dimensions: Any) -> frozenset[tuple[str, str]]:
    return frozenset((str(d.name), str(d.value)) for d in dimensions or [])


@dataclass(frozen=True)
class MetricQuery:
    """One metric and the statistic of it a query reads."""

    namespace: str
    name: str
    dimensions: frozenset[tuple[str, str]]
    stat: str


def metric_series(
    data: list[Any], query: MetricQuery, periods: list[datetime], period: int
) -> Series:
    """The statistic of each period from the datapoints of exactly this metric."""
    first, end = periods[0], periods[-1] + timedelta(seconds=period)
    by_period: dict[datetime, list[Any]] = {}
    for datum in data:
        if datum.namespace != query.namespace or datum.name != query.name:
            continue
        if _dimensions(datum.dimensions) != query.dimensions:
            continue
        stamp = datum.timestamp.replace(tzinfo=UTC)
        if first <= stamp < end:
            by_period.setdefault(_period_start(stamp, period), []).append(datum)
    series: Series = {}
    for start, found in by_period.items():
        statistics = Statistics([query.stat], start)
        statistics.metric_data = found
        value = statistics.get_statistics_for_type(query.stat)
        if value is not None:
            series[start] = float(value)
    return series


# -- the alarm ------------------------------------------------------------------------------


def alarm_series(alarm: Alarm, data: list[Any], periods: list[datetime], period: int) -> Series:
    """The alarm's own time series over `periods`."""
    if not alarm.metric_data_queries:
        stat = str(alarm.statistic or alarm.extended_statistic)
        query = MetricQuery(alarm.namespace, alarm.metric_name, _dimensions(alarm.dimensions), stat)
        return metric_series(data, query, periods, period)
    series: dict[str, Series] = {}
    for each in alarm.metric_data_queries:
        if each.metric_stat is not None:
            metric = each.metric_stat.metric
            read = MetricQuery(
                metric.namespace,
                metric.metric_name,
                _dimensions(metric.dimensions),
                str(each.metric_stat.stat),
            )
            series[each.id] = metric_series(data, read, periods, int(each.metric_stat.period))
    expressions = {q.id: q.expression for q in alarm.metric_data_queries if q.expression}
    for query_id, text in expressions.items():
        result = Expression(text, series, periods).value()
        series[query_id] = result if isinstance(result, dict) else dict.fromkeys(periods, result)
    (returned,) = [q.id for q in alarm.metric_data_queries if str(q.return_data).lower() != "false"]
    return series[returned]


def alarm_period(alarm: Alarm) -> int:
    if not alarm.metric_data_queries:
        return int(alarm.period)
    periods = {int(q.metric_stat.period) for q in alarm.metric_data_queries if q.metric_stat}
    if len(periods) != 1:
        raise UnsupportedAlarmError(f"alarm {alarm.name}: queries of periods {sorted(periods)}")
    return periods.pop()


# CloudWatch "attempts to retrieve a higher number of data points than specified by
# Evaluation Periods" (the evaluation range); how many more is not documented, and the
# guide's tables retrieve five for three: two more here.
EXTRA_PERIODS = 2


def decide(
    points: list[float | None], n: int, m: int, treat: str, breaches: Callable[[float], bool]
) -> tuple[str | None, list[float]]:
    """The state from the evaluation range's values (oldest first, None where a period
    has none), and the values it was decided on; None: the alarm keeps its state.

    As "Configuring how CloudWatch alarms treat missing data" describes: with at least N
    real data points the treatment of missing data is not needed (the N most recent
    decide); with fewer, real points count wherever they are and missing ones are filled
    as the treatment says, as few as possible. For `missing` and `ignore`, which fill
    nothing, the guide's tables decide: a real point within the threshold means OK, all
    missing means INSUFFICIENT_DATA (`missing`) or no change (`ignore`), and real points
    that all breach, fewer than M, mean INSUFFICIENT_DATA when the most recent period has
    a value and ALARM when it has none (`missing`; rows `- - - - X` and `X - - - -`) or
    no change (`ignore`)."""
    real = [value for value in points if value is not None]
    if len(real) >= n:
        decided = real[-n:]
        return ("ALARM" if sum(map(breaches, decided)) >= m else "OK"), decided
    breaching = sum(map(breaches, real))
    if treat in {"breaching", "notBreaching"}:
        filled = n - len(real) if treat == "breaching" else 0
        return ("ALARM" if breaching + filled >= m else "OK"), real
    if treat not in {"missing", "ignore"}:
        raise UnsupportedAlarmError(f"TreatMissingData {treat!r}")
    return _unfilled(points, treat, enough=breaching >= m, within=breaching < len(real)), real


def _unfilled(points: list[float | None], treat: str, *, enough: bool, within: bool) -> str | None:
    """`missing` or `ignore` with fewer real points than N (see decide): `enough` of them
    breach, or some (`within`) do not."""
    if enough and any(value is not None for value in points):
        return "ALARM"
    if within:
        return "OK"
    if treat == "ignore":
        return None
    if all(value is None for value in points):
        return "INSUFFICIENT_DATA"
    return "INSUFFICIENT_DATA" if points[-1] is not None else "ALARM"


def evaluate(alarm: Alarm, data: list[Any], now: datetime) -> Evaluation | None:
    """The alarm's state from its evaluation range; None when it keeps its state."""
    if alarm.comparison_operator not in _COMPARISONS:
        raise UnsupportedAlarmError(
            f"alarm {alarm.name}: comparison {alarm.comparison_operator} is not emulated"
        )
    compare, words = _COMPARISONS[alarm.comparison_operator]
    period = alarm_period(alarm)
    n = int(alarm.evaluation_periods)
    m = int(alarm.datapoints_to_alarm or n)
    periods = _periods(now, period, n + EXTRA_PERIODS)
    series = alarm_series(alarm, data, periods, period)
    threshold = float(alarm.threshold)
    state, decided = decide(
        [series.get(t) for t in periods],
        n,
        m,
        alarm.treat_missing_data or "missing",
        lambda value: compare(value, threshold),
    )
    if state is None:
        return None
    values = [(t, series[t]) for t in periods if t in series][-len(decided) :] if decided else []
    reason_data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": _iso(now),
        "startDate": _iso(values[0][0] if values else periods[0]),
        "period": period,
        "recentDatapoints": [value for _, value in values],
        "threshold": threshold,
    }
    if not alarm.metric_data_queries:
        reason_data["statistic"] = alarm.statistic or alarm.extended_statistic
    if state == "INSUFFICIENT_DATA":
        reason = f"Insufficient Data: {n} datapoint{'s were' if n > 1 else ' was'} unknown."
        return Evaluation(state, reason, json.dumps(reason_data))
    breaching = sum(1 for _, value in values if compare(value, threshold))
    shown = ", ".join(f"{v} ({t.strftime('%d/%m/%y %H:%M:%S')})" for t, v in reversed(values))
    if state == "ALARM":
        counted, verb, transition = breaching, "was", "OK -> ALARM"
    else:
        counted, verb, transition = len(values) - breaching, "was not", "ALARM -> OK"
    reason = (
        f"Threshold Crossed: {counted} out of the last {len(values)} datapoints [{shown}] "
        f"{verb} {words} the threshold ({threshold}) "
        f"(minimum {m} datapoint{'s' if m > 1 else ''} for {transition} transition)."
    )
    return Evaluation(state, reason, json.dumps(reason_data))


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%S.") + f"{aware.microsecond // 1000:03d}+0000"


# Each backend's datapoints by the minute they are stamped in (its `metric_data` is one
# list of every datapoint ever put; scanning it every simulated minute grows with the run).
_by_minute: weakref.WeakKeyDictionary[Any, dict[int, list[Any]]] = weakref.WeakKeyDictionary()


def _minute(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp()) // 60


def install() -> None:
    """Index datapoints by minute as PutMetricData stores them (once per process)."""
    if getattr(CloudWatchBackend.put_metric_data, "_indexed", False):
        return
    put = CloudWatchBackend.put_metric_data

    def indexed(self: CloudWatchBackend, namespace: str, metric_data: list[Any]) -> None:
        before = len(self.metric_data)
        put(self, namespace, metric_data)
        index = _by_minute.setdefault(self, {})
        for datum in self.metric_data[before:]:
            index.setdefault(_minute(datum.timestamp), []).append(datum)

    indexed._indexed = True  # type: ignore[attr-defined]
    CloudWatchBackend.put_metric_data = indexed  # type: ignore[method-assign]


def evaluate_region(account: str, region: str, now: datetime) -> None:
    """Evaluate every metric alarm of the region; a change of state is recorded (and sent
    as the CloudWatch event)."""
    backend = cloudwatch_backends[account][region]
    alarms = [a for a in backend.alarms.values() if not a.rule]  # not composite alarms
    if not alarms:
        return
    index = _by_minute.get(backend, {})
    last = _minute(now)
    # Each alarm reads the datapoints of its own reach (one list per reach): an alarm of
    # long periods must not make every other alarm read its hours of data.
    windows: dict[int, list[Any]] = {}
    for alarm in alarms:
        reach = alarm_period(alarm) * (int(alarm.evaluation_periods) + EXTRA_PERIODS)
        if reach not in windows:
            minutes = range(last - reach // 60 - 1, last + 1)
            windows[reach] = [d for m in minutes for d in index.get(m, [])]
        outcome = evaluate(alarm, windows[reach], now)
        if outcome is not None and outcome.state != alarm.state_value:
            alarm.update_state(outcome.reason, outcome.reason_data, outcome.state)
