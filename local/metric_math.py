"""CloudWatch metric math, as alarms use it (CloudWatch user guide, "Metric math syntax
and functions"): numbers, the ids of other queries, `+ - * /`, comparisons (1 when true,
0 when false), unary minus, `IF(condition, a, b)` and `FILL(series, value)`. Any other
function or syntax is refused with an error (never guessed). local.alarm_evaluation
evaluates alarms with it.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from datetime import datetime

# A series: a value per period start (a period with no value is absent).
Series = dict[datetime, float]
Value = Series | float


class UnsupportedAlarmError(Exception):
    """An alarm this emulation cannot evaluate faithfully (named, never guessed)."""


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


class Expression:
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
