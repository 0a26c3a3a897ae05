"""The two tests a canary judgment runs, one-sided: is the canary worse than the baseline?

Written here rather than imported: the gate runs in Lambda with boto3 and Powertools only,
and scipy with numpy would multiply its package several times over for two formulas
(docs/adr/0014-canary-judgment.md). Each is held to scipy's own implementation on
generated samples (tests/release/test_stats.py):
- `proportions_greater`: the pooled two-proportion z test (the score test; its square is
  Pearson's chi-squared statistic of the 2x2 table without continuity correction, which
  `scipy.stats.chi2_contingency(correction=False)` computes);
- `fisher_greater`: Fisher's exact test, as `scipy.stats.fisher_exact(table,
  alternative="greater")`, for tables where a cell expects fewer than 5;
- `mann_whitney_greater`: the Mann-Whitney U test as `scipy.stats.mannwhitneyu(x, y,
  alternative="greater")` computes it by default: exact when a sample has at most 8
  values and no value is tied, else the normal approximation with the tie and
  continuity corrections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# scipy's rule for its default method: exact below this size, when nothing is tied.
EXACT_UP_TO = 8
# Below this many expected events (or non-events) in a cell, the z test's normal
# approximation misstates small p-values; Fisher's exact test is used instead.
FEW_EXPECTED = 5


@dataclass(frozen=True)
class Tested:
    """A test's statistic and its one-sided p-value."""

    statistic: float
    p_value: float


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def proportions_greater(events: int, trials: int, base_events: int, base_trials: int) -> Tested:
    """Whether `events / trials` exceeds `base_events / base_trials`: z, and P(Z >= z)
    under equal proportions (the pooled proportion estimates both). With no event, or
    nothing but events, on both sides there is no evidence either way: z = 0, p = 1."""
    if trials <= 0 or base_trials <= 0:
        raise ValueError("both samples need at least one trial")
    pooled = (events + base_events) / (trials + base_trials)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / trials + 1 / base_trials))
    if spread == 0:
        return Tested(0.0, 1.0)
    z = (events / trials - base_events / base_trials) / spread
    return Tested(z, normal_sf(z))


def fisher_greater(events: int, trials: int, base_events: int, base_trials: int) -> Tested:
    """Fisher's exact test that `events / trials` exceeds `base_events / base_trials`: the
    sample odds ratio, and P(X >= events) for X hypergeometric (the events of both sides
    shared between them at random, the table's margins fixed)."""
    if trials <= 0 or base_trials <= 0:
        raise ValueError("both samples need at least one trial")
    total, shared = trials + base_trials, events + base_events
    others = (trials - events) * base_events
    odds = events * (base_trials - base_events) / others if others else math.inf
    if events * (base_trials - base_events) == 0 and others == 0:
        odds = math.nan
    top = min(shared, trials)

    def log_weight(x: int) -> float:  # log C(shared, x) C(total - shared, trials - x)
        return _log_comb(shared, x) + _log_comb(total - shared, trials - x)

    whole = _log_comb(total, trials)
    tail = sum(math.exp(log_weight(x) - whole) for x in range(max(events, 0), top + 1))
    return Tested(odds, min(1.0, tail))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def two_proportions_greater(
    events: int, trials: int, base_events: int, base_trials: int
) -> tuple[str, Tested]:
    """The test a judgment runs on counts: the pooled z test where each cell of the 2x2
    table expects at least FEW_EXPECTED under equal proportions (Cochran's rule for the
    normal approximation), else Fisher's exact test; and which one it was."""
    total, shared = trials + base_trials, events + base_events
    expected = [
        side * part / total for side in (trials, base_trials) for part in (shared, total - shared)
    ]
    if min(expected) < FEW_EXPECTED:
        return "fisher", fisher_greater(events, trials, base_events, base_trials)
    return "z", proportions_greater(events, trials, base_events, base_trials)


def mann_whitney_greater(sample: list[float], base: list[float]) -> Tested:
    """Whether `sample` tends to be larger than `base`: U of `sample`, and P(U >= u)
    when both come from one distribution."""
    n1, n2 = len(sample), len(base)
    if not n1 or not n2:
        raise ValueError("both samples need at least one value")
    ranks, ties = _midranks([*sample, *base])
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    tied = any(t > 1 for t in ties)
    if min(n1, n2) <= EXACT_UP_TO and not tied:
        return Tested(u, _exact_sf(round(u), n1, n2))
    n = n1 + n2
    tie_term = sum(t**3 - t for t in ties)
    spread = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    if spread == 0:  # every value tied: no order to test
        return Tested(u, 1.0)
    z = (u - n1 * n2 / 2 - 0.5) / spread  # the continuity correction
    return Tested(u, min(1.0, normal_sf(z)))


def _midranks(values: list[float]) -> tuple[list[float], list[int]]:
    """Ranks from 1, tied values sharing their mean rank; and the size of each tie group."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    groups: list[int] = []
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        groups.append(end - start + 1)
        start = end + 1
    return ranks, groups


def _exact_sf(u: int, n1: int, n2: int) -> float:
    """P(U >= u) under the null: the share of the C(n1+n2, n1) orderings with U >= u."""
    counts = _orderings(min(n1, n2), max(n1, n2))
    return min(1.0, sum(counts[max(u, 0) :]) / math.comb(n1 + n2, n1))


def _orderings(m: int, n: int) -> list[int]:
    """How many orderings of m values of one sample and n of the other give U = 0, 1, ...
    m*n: the coefficients of the Gaussian binomial [m+n choose m] in q, the product over
    k = 1..m of (1 - q^(n+k)) / (1 - q^k), multiplied out term by term in integers."""
    counts = [1] + [0] * (m * n)
    for k in range(1, m + 1):
        for i in range(len(counts) - 1, n + k - 1, -1):  # times (1 - q^(n+k))
            counts[i] -= counts[i - n - k]
        for i in range(k, len(counts)):  # divided by (1 - q^k)
            counts[i] += counts[i - k]
    return counts
