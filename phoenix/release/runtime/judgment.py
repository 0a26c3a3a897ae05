"""A canary step's judgment: each metric of the canary slot against the baseline (the
active slot) over the step's bake, then the step's score (docs/judgment.md).

Per metric, one one-sided test at the configured confidence (stats.py) and an effect size:
- counts (5xx of requests): the pooled two-proportion z test, or Fisher's exact test when
  a cell of the table expects fewer than 5 (stats.py); the effect is the ratio of the
  canary's rate to the baseline's;
- per-period samples (p99 latency per minute): the Mann-Whitney U test; the effect is
  the ratio of the medians.
A metric fails when the canary is worse with significance (p below 1 - confidence) and by
more than its allowed effect (the canary may be up to `allowed_ratio` times the baseline,
in the bad direction, before that counts). Too few requests or samples is no data, which
is never a pass. The score is the weighted share of passing metrics, in percent: a
critical metric's failure fails the step; a score below `marginal_score` fails it; at or
above `pass_score` passes it; in between it is marginal (the bake is extended).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Literal

from phoenix.release.runtime import stats

Verdict = Literal["pass", "fail", "no data"]
StepOutcome = Literal["pass", "marginal", "fail"]
Direction = Literal["increase", "decrease"]


@dataclass(frozen=True)
class Policy:
    """How a fleet judges its canary steps."""

    confidence: float = 0.98
    pass_score: float = 95.0
    marginal_score: float = 75.0
    # fewer canary (or baseline) requests than this in the step: no data
    min_requests: int = 200
    # fewer per-period samples than this on either side: no data
    min_samples: int = 4


@dataclass(frozen=True)
class Rule:
    """One metric (judged by judge_counts or judge_samples): which direction is bad, the
    effect allowed (a ratio, at least 1), whether a failure fails the step, its weight."""

    name: str
    direction: Direction = "increase"
    allowed_ratio: float = 1.2
    critical: bool = False
    weight: float = 50.0
    unit: str = ""  # how its values are shown (counts are shown as a rate in %)


@dataclass(frozen=True)
class Counts:
    """Events of trials (5xx of requests) on each side, over the step."""

    events: int
    trials: int
    base_events: int
    base_trials: int


@dataclass(frozen=True)
class Samples:
    """One value per period on each side, over the step."""

    values: tuple[float, ...]
    base_values: tuple[float, ...]


@dataclass(frozen=True)
class Judged:
    """A metric's verdict, with what it was judged on."""

    name: str
    verdict: Verdict
    canary: float | None = None
    baseline: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    ratio: float | None = None
    why: str = ""
    # the test that judged it: "z" or "fisher" (counts), "mann-whitney" (per period)
    test: str = ""


@dataclass(frozen=True)
class StepJudgment:
    outcome: StepOutcome
    score: float
    metrics: tuple[Judged, ...] = field(default_factory=tuple)
    reason: str = ""


def judge_counts(rule: Rule, seen: Counts, policy: Policy) -> Judged:
    """The canary's rate of events against the baseline's (increase is bad)."""
    if seen.trials < policy.min_requests or seen.base_trials < policy.min_requests:
        return Judged(
            rule.name,
            "no data",
            why=f"{seen.trials} canary and {seen.base_trials} baseline requests, "
            f"fewer than {policy.min_requests}",
        )
    rate, base = seen.events / seen.trials, seen.base_events / seen.base_trials
    test, tested = stats.two_proportions_greater(
        seen.events, seen.trials, seen.base_events, seen.base_trials
    )
    ratio = _ratio(rate, base)
    shown = (100 * rate, 100 * base)
    return _verdict(rule, policy, tested, values=shown, ratio=ratio, unit="%", test=test)


def judge_samples(rule: Rule, seen: Samples, policy: Policy) -> Judged:
    """The canary's per-period values against the baseline's, in the rule's direction."""
    values, base = list(seen.values), list(seen.base_values)
    if len(values) < policy.min_samples or len(base) < policy.min_samples:
        return Judged(
            rule.name,
            "no data",
            why=f"{len(values)} canary and {len(base)} baseline periods, "
            f"fewer than {policy.min_samples}",
        )
    middle, base_middle = statistics.median(values), statistics.median(base)
    if rule.direction == "increase":
        tested = stats.mann_whitney_greater(values, base)
        ratio = _ratio(middle, base_middle)
    else:
        tested = stats.mann_whitney_greater(base, values)
        ratio = _ratio(base_middle, middle)
    shown = (middle, base_middle)
    return _verdict(
        rule, policy, tested, values=shown, ratio=ratio, unit=rule.unit, test="mann-whitney"
    )


def _ratio(worse: float, better: float) -> float:
    """How many times `better` the `worse` side is (both 0: 1; only `better` 0: inf)."""
    if better == 0:
        return 1.0 if worse == 0 else math.inf
    return worse / better


def _verdict(
    rule: Rule,
    policy: Policy,
    tested: stats.Tested,
    *,
    values: tuple[float, float],
    ratio: float,
    unit: str,
    test: str,
) -> Judged:
    canary, baseline = values
    significant = tested.p_value < 1 - policy.confidence
    failed = significant and ratio > rule.allowed_ratio
    shown = (
        f"canary {canary:.4g}{unit}, baseline {baseline:.4g}{unit}, "
        f"ratio {ratio:.3g} (allowed {rule.allowed_ratio:g}), p={tested.p_value:.3g}"
    )
    return Judged(
        rule.name,
        "fail" if failed else "pass",
        canary=canary,
        baseline=baseline,
        statistic=tested.statistic,
        p_value=tested.p_value,
        ratio=ratio,
        why=shown,
        test=test,
    )


def score_step(rules: list[Rule], judged: list[Judged], policy: Policy) -> StepJudgment:
    """The step's outcome from its metrics' verdicts (in the rules' order)."""
    weights = {rule.name: rule.weight for rule in rules}
    total = sum(weights.values())
    passing = sum(weights[j.name] for j in judged if j.verdict == "pass")
    score = 100.0 * passing / total if total else 0.0
    critical = {rule.name for rule in rules if rule.critical}
    failed = [j for j in judged if j.verdict == "fail"]
    named = "; ".join(f"{j.name} {j.verdict}: {j.why}" for j in judged if j.verdict != "pass")
    if any(j.name in critical for j in failed):
        return StepJudgment("fail", score, tuple(judged), f"critical metric failed: {named}")
    if score < policy.marginal_score:
        reason = f"score {score:.0f} below {policy.marginal_score:g}: {named}"
        return StepJudgment("fail", score, tuple(judged), reason)
    if score < policy.pass_score:
        reason = f"score {score:.0f} below {policy.pass_score:g}: {named}"
        return StepJudgment("marginal", score, tuple(judged), reason)
    return StepJudgment("pass", score, tuple(judged), named)
