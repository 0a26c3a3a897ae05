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

import ast
import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch.models import Alarm, Statistics, cloudwatch_backends

# A series: a value per period start (a period with no value is absent).
Series = dict[datetime, float]
Value = Series | float


class UnsupportedAlarmError(Exception):
    """An alarm this emulation cannot evaluate faithfully (named, never guessed)."""


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


# -- metric math ----------------------------------------------------------------------------


def _combine(left: Value, right: Value, apply: Callable[[float, float], float]) -> Value:
    """An operator over two values. Between two series: every timestamp either has, a
    missing value read as 0 ("Missing values in a time series are treated as 0", also for
    comparisons); with a number: the series' timestamps. A division by zero drops the
    data point."""

    def one(a: float, b: float) -> float | None:
        try:
            return apply(a, b)
        except ZeroDivisionError:
            return None

    if isinstance(left, dict) and isinstance(right, dict):
        pairs = {t: one(left.get(t, 0), right.get(t, 0)) for t in left.keys() | right.keys()}
    elif isinstance(left, dict):
        pairs = {t: one(v, float(right)) for t, v in left.items()}  # type: ignore[arg-type]
    elif isinstance(right, dict):
        pairs = {t: one(float(left), v) for t, v in right.items()}
    else:
        single = one(left, right)
        if single is None:
            raise UnsupportedAlarmError("a constant division by zero")
        return single
    return {t: v for t, v in pairs.items() if v is not None}


_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class _Expression:
    """A metric math expression over the query series, for the evaluated periods.

    Parsed with Python's `ast` (the subset used here is also Python syntax) and
    evaluated node by node: only the nodes listed are accepted."""

    def __init__(self, text: str, series: Mapping[str, Series], periods: list[datetime]):
        self._series = series
        self._periods = periods
        try:
            self._tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as error:
            raise UnsupportedAlarmError(f"expression {text!r}: {error.msg}") from None
        self._text = text

    def value(self) -> Value:
        return self._eval(self._tree)

    def _eval(self, node: ast.expr) -> Value:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in self._series:
                raise UnsupportedAlarmError(f"expression {self._text!r}: no query {node.id!r}")
            return dict(self._series[node.id])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return _combine(0.0, self._eval(node.operand), operator.sub)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _combine(self._eval(node.left), self._eval(node.right), _BINARY[type(node.op)])
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            test = _COMPARE[type(node.ops[0])]
            return _combine(
                self._eval(node.left),
                self._eval(node.comparators[0]),
                lambda a, b: 1.0 if test(a, b) else 0.0,
            )
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            return self._call(node, node.func.id, [self._eval(a) for a in node.args])
        raise self._unsupported(node)

    def _unsupported(self, node: ast.expr) -> UnsupportedAlarmError:
        return UnsupportedAlarmError(
            f"expression {self._text!r}: {ast.unparse(node)!r} is not emulated"
        )

    def _call(self, node: ast.expr, function: str, arguments: list[Value]) -> Value:
        if function == "FILL" and len(arguments) == 2:
            return self._fill(*arguments)
        if function == "IF" and len(arguments) == 3:
            return self._if(*arguments)
        raise self._unsupported(node)

    def _fill(self, series: Value, value: Value) -> Value:
        if not isinstance(series, dict) or isinstance(value, dict):
            raise UnsupportedAlarmError(f"expression {self._text!r}: FILL(series, number)")
        return {t: series.get(t, value) for t in self._periods}

    def _if(self, condition: Value, when_true: Value, when_false: Value) -> Value:
        """IF per timestamp of the condition (a missing condition: no value); a TRUE
        condition where the true series has no value gives 0, a FALSE one where the false
        series has none gives no value (the guide's IF(metric1, metric2, metric3) table)."""
        if not isinstance(condition, dict):
            return when_true if condition else when_false
        chosen: Series = {}
        for moment, test in condition.items():
            if test:
                chosen[moment] = (
                    when_true.get(moment, 0.0) if isinstance(when_true, dict) else when_true
                )
            elif not isinstance(when_false, dict):
                chosen[moment] = when_false
            elif moment in when_false:
                chosen[moment] = when_false[moment]
        return chosen


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
        result = _Expression(text, series, periods).value()
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


def evaluate_region(account: str, region: str, now: datetime) -> None:
    """Evaluate every metric alarm of the region; a change of state is recorded (and sent
    as the CloudWatch event)."""
    backend = cloudwatch_backends[account][region]
    alarms = [a for a in backend.alarms.values() if not a.rule]  # not composite alarms
    if not alarms:
        return
    reach = max(alarm_period(a) * (int(a.evaluation_periods) + EXTRA_PERIODS) for a in alarms)
    since = (now - timedelta(seconds=reach + 60)).replace(tzinfo=None)
    recent = [d for d in backend.metric_data if d.timestamp.replace(tzinfo=None) >= since]
    for alarm in alarms:
        outcome = evaluate(alarm, recent, now)
        if outcome is not None and outcome.state != alarm.state_value:
            alarm.update_state(outcome.reason, outcome.reason_data, outcome.state)
