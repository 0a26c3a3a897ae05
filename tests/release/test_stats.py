"""The judgment's tests (phoenix/release/runtime/stats.py) against scipy's implementations,
on samples hypothesis generates: the exact and the approximate Mann-Whitney U, with and
without ties, the pooled two-proportion z test through Pearson's chi-squared, and Fisher's
exact test."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, fisher_exact, mannwhitneyu

from phoenix.release.runtime.stats import (
    EXACT_UP_TO,
    FEW_EXPECTED,
    fisher_greater,
    mann_whitney_greater,
    normal_sf,
    proportions_greater,
    two_proportions_greater,
)

# Per-minute latencies in ms: few distinct values make ties, many make none.
tied = st.lists(st.integers(40, 60).map(float), min_size=1, max_size=30)
spread = st.lists(
    st.floats(1.0, 5000.0, allow_nan=False).map(lambda v: round(v, 3)), min_size=1, max_size=30
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.tuples(tied, tied), st.tuples(spread, spread)))
def test_mann_whitney_is_scipy_s(samples: tuple[list[float], list[float]]) -> None:
    sample, base = samples
    ours = mann_whitney_greater(sample, base)
    theirs = mannwhitneyu(sample, base, alternative="greater")
    assert ours.statistic == pytest.approx(float(theirs.statistic))
    if math.isnan(float(theirs.pvalue)):  # scipy: every value tied, no order
        assert ours.p_value == 1.0
    else:
        assert ours.p_value == pytest.approx(float(theirs.pvalue), rel=1e-9, abs=1e-12)


def test_small_samples_without_ties_are_exact() -> None:
    # U = 12 is the largest of 3 x 4: one ordering in C(7, 3) = 35
    result = mann_whitney_greater([7.0, 8.0, 9.0], [1.0, 2.0, 3.0, 4.0])
    assert result.statistic == 12
    assert result.p_value == pytest.approx(1 / 35)
    assert EXACT_UP_TO == 8


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 5000),
    st.integers(1, 50000),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_two_proportions_is_pearson_s_chi_squared(
    trials: int, base_trials: int, share: float, base_share: float
) -> None:
    events, base_events = round(trials * share), round(base_trials * base_share)
    ours = proportions_greater(events, trials, base_events, base_trials)
    table = [[events, trials - events], [base_events, base_trials - base_events]]
    if (
        ours.p_value == 1.0
        and ours.statistic == 0.0
        and (events + base_events)
        in (
            0,
            trials + base_trials,
        )
    ):
        return  # a column of zeros: scipy refuses the table, and there is nothing to test
    chi2, two_sided, _, _ = chi2_contingency(table, correction=False)
    assert ours.statistic**2 == pytest.approx(float(chi2), rel=1e-9, abs=1e-9)
    one_sided = two_sided / 2 if ours.statistic > 0 else 1 - two_sided / 2
    assert ours.p_value == pytest.approx(float(one_sided), rel=1e-7, abs=1e-12)


def test_no_event_on_either_side_is_no_evidence() -> None:
    assert proportions_greater(0, 1000, 0, 9000).p_value == 1.0
    assert normal_sf(0.0) == 0.5
    with pytest.raises(ValueError, match="at least one trial"):
        proportions_greater(0, 0, 1, 10)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 3000),
    st.integers(1, 30000),
    st.floats(0.0, 0.02),
    st.floats(0.0, 0.02),
)
def test_fisher_is_scipy_s(trials: int, base_trials: int, share: float, base_share: float) -> None:
    events, base_events = round(trials * share), round(base_trials * base_share)
    ours = fisher_greater(events, trials, base_events, base_trials)
    table = [[events, trials - events], [base_events, base_trials - base_events]]
    theirs = fisher_exact(table, alternative="greater")
    assert ours.p_value == pytest.approx(float(theirs.pvalue), rel=1e-9, abs=1e-12)
    if math.isnan(float(theirs.statistic)):
        assert math.isnan(ours.statistic)
    else:
        assert ours.statistic == pytest.approx(float(theirs.statistic))


def test_few_expected_events_are_judged_exactly_not_by_the_normal_approximation() -> None:
    # 3 errors in 1,500 canary requests against 14 in 28,500: 0.85 expected on the canary
    test, exact = two_proportions_greater(3, 1500, 14, 28500)
    assert test == "fisher"
    assert exact.p_value == pytest.approx(0.0502, abs=1e-4)  # not significant at 0.98
    # the z test alone would call it significant (p about 0.006): its tail is too thin
    assert proportions_greater(3, 1500, 14, 28500).p_value < 0.01
    # with enough events on both sides, the z test
    assert two_proportions_greater(30, 1000, 190, 19000)[0] == "z"
    assert FEW_EXPECTED == 5
