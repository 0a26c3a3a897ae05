"""A canary step's judgment (phoenix/release/runtime/judgment.py): each metric's verdict
and the step's score and outcome."""

from __future__ import annotations

import math

import pytest

from phoenix.release.runtime.gate import recorded
from phoenix.release.runtime.judgment import (
    Counts,
    Judged,
    Policy,
    Rule,
    Samples,
    judge_counts,
    judge_samples,
    score_step,
)

POLICY = Policy()
ERRORS = Rule("5xx rate", critical=True)
LATENCY = Rule("p99 latency")
EVEN_P99 = (200.0, 204.0, 198.0, 201.0, 199.0)
BASELINE_P99 = (100.0, 104.0, 98.0, 101.0, 97.0, 103.0, 99.0, 102.0, 100.5, 98.5)


def test_one_error_in_ten_is_no_data_not_a_ten_percent_rate() -> None:
    judged = judge_counts(ERRORS, Counts(1, 10, 90, 9000), POLICY)
    assert judged.verdict == "no data"
    assert "10 canary" in judged.why


def test_zero_canary_requests_is_no_data_never_a_pass() -> None:
    assert judge_counts(ERRORS, Counts(0, 0, 90, 9000), POLICY).verdict == "no data"
    step = score_step([ERRORS], [judge_counts(ERRORS, Counts(0, 0, 90, 9000), POLICY)], POLICY)
    assert step.outcome == "fail"
    assert step.score == 0


def test_five_percent_errors_against_a_tenth_of_a_percent_fails() -> None:
    # (the threshold gate let this pass: 5.0% is not above a 5% threshold)
    judged = judge_counts(ERRORS, Counts(50, 1000, 9, 9000), POLICY)
    assert judged.verdict == "fail"
    assert judged.ratio == pytest.approx(50.0)
    assert judged.canary == pytest.approx(5.0)
    assert judged.p_value is not None
    assert judged.p_value < 1e-6


def test_a_difference_within_the_allowed_effect_passes_however_significant() -> None:
    # 1.1% against 1.0% over a million requests: significant, but within 1.2 times
    judged = judge_counts(ERRORS, Counts(11_000, 1_000_000, 90_000, 9_000_000), POLICY)
    assert judged.p_value is not None
    assert judged.p_value < 1 - POLICY.confidence
    assert judged.verdict == "pass"


def test_errors_where_the_baseline_has_none_are_an_infinite_ratio() -> None:
    judged = judge_counts(ERRORS, Counts(20, 1000, 0, 9000), POLICY)
    assert judged.ratio == math.inf
    assert judged.verdict == "fail"


def test_a_slower_canary_fails_its_latency_and_a_faster_one_passes() -> None:
    slower = tuple(1.5 * v for v in BASELINE_P99)
    assert judge_samples(LATENCY, Samples(slower, BASELINE_P99), POLICY).verdict == "fail"
    faster = tuple(0.5 * v for v in BASELINE_P99)
    assert judge_samples(LATENCY, Samples(faster, BASELINE_P99), POLICY).verdict == "pass"


def test_a_metric_whose_decrease_is_bad_fails_when_it_drops() -> None:
    orders = Rule("orders", direction="decrease")
    dropped = tuple(0.5 * v for v in BASELINE_P99)
    judged = judge_samples(orders, Samples(dropped, BASELINE_P99), POLICY)
    assert judged.verdict == "fail"
    assert judged.ratio == pytest.approx(2.0)


def test_too_few_periods_is_no_data() -> None:
    judged = judge_samples(LATENCY, Samples((500.0,) * 3, BASELINE_P99), POLICY)
    assert judged.verdict == "no data"


def _judged(name: str, verdict: str) -> Judged:
    return Judged(name, verdict, why=f"{name} {verdict}")  # type: ignore[arg-type]


def test_the_score_is_the_weighted_share_of_passing_metrics() -> None:
    rules = [
        Rule("a", weight=60),
        Rule("b", weight=30),
        Rule("c", weight=10),
    ]
    policy = Policy(pass_score=95, marginal_score=75)
    passing = score_step(
        rules, [_judged("a", "pass"), _judged("b", "pass"), _judged("c", "pass")], policy
    )
    assert (passing.outcome, passing.score) == ("pass", 100)
    # c fails: 90, between the marginal and the pass scores
    marginal = score_step(
        rules, [_judged("a", "pass"), _judged("b", "pass"), _judged("c", "fail")], policy
    )
    assert (marginal.outcome, marginal.score) == ("marginal", 90)
    assert "c fail" in marginal.reason
    # b has no data: 70, below the marginal score
    failed = score_step(
        rules, [_judged("a", "pass"), _judged("b", "no data"), _judged("c", "pass")], policy
    )
    assert (failed.outcome, failed.score) == ("fail", 70)


def test_a_critical_metric_s_failure_fails_the_step_whatever_the_score() -> None:
    rules = [Rule("a", weight=99), Rule("errors", critical=True, weight=1)]
    step = score_step(rules, [_judged("a", "pass"), _judged("errors", "fail")], POLICY)
    assert step.outcome == "fail"
    assert step.score == 99
    assert step.reason.startswith("critical metric failed: errors fail")


def test_the_recorded_judgment_holds_each_metric_s_numbers() -> None:
    judged = score_step(
        [Rule("5xx rate", critical=True), Rule("p99 latency")],
        [
            judge_counts(Rule("5xx rate"), Counts(50, 1000, 19, 19000), Policy()),
            judge_samples(
                Rule("p99 latency"),
                Samples(EVEN_P99, EVEN_P99),
                Policy(),
            ),
        ],
        Policy(),
    )
    kept = recorded(judged)
    assert (kept["outcome"], kept["score"]) == ("fail", 50.0)
    errors, latency = kept["judged"]
    assert errors["verdict"] == "fail"
    assert (errors["canary"], errors["baseline"], errors["ratio"]) == (5.0, 0.1, 50.0)
    assert errors["statistic"] > 10
    assert errors["p_value"] < 1e-6
    assert latency["verdict"] == "pass"
    assert latency["p_value"] > 0.3
