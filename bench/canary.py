"""The canary judgment (phoenix/release/runtime/judgment.py) on generated metrics, beside
the threshold gate phoenix used before it, in the same runs.

One canary step takes 10% of the traffic for a 10-minute bake: 100 canary and 900
baseline requests a minute, 1,000 canary requests in the step. Each request errs with its
side's error rate; its latency is drawn from a log-normal distribution (median 50 ms,
sigma 0.6); each minute gives each side its 5xx count, its request count and the p99 of
its requests' latencies, as the ALB's metrics would. Cases, each `--runs` seeded runs:
- errors: baseline 1% 5xx, canary 3% (power: the step should fail);
- latency: the canary's latencies 1.5 times the baseline's (power);
- equal: both sides the same (false positives: the step should pass).
The judgment uses a fleet's default rules (5xx rate, critical; p99 per minute) and policy; the
threshold gate fails the canary when its 5xx rate exceeds 5% and the baseline's, or its
worst minute's p99 exceeds 1000 ms and the baseline's worst (the fleet defaults).

    .venv/bin/python -m bench.canary [--runs 200]

Last line: `canary judgment: power P% (threshold gate Q%), false positives F% (threshold
gate G%) over N runs`, where power is the lower of the two power cases.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from phoenix.release.runtime.gate import judged_by
from phoenix.release.runtime.judgment import (
    Counts,
    Policy,
    Rule,
    Samples,
    judge_counts,
    judge_samples,
    score_step,
)
from phoenix.release.runtime.models import JudgmentSpec

MINUTES = 10
CANARY_PER_MINUTE, BASELINE_PER_MINUTE = 100, 900
MEDIAN_MS, SIGMA = 50.0, 0.6
ERROR_THRESHOLD_PERCENT, P99_THRESHOLD_MS = 5.0, 1000.0
# A fleet's defaults (phoenix/config/fleet.py JudgmentSettings), as the gate reads them.
RULES, POLICY = judged_by(JudgmentSpec())


@dataclass(frozen=True)
class Case:
    name: str
    base_error: float
    canary_error: float
    canary_slowdown: float
    should_fail: bool


CASES = (
    Case("errors 1% -> 3%", 0.01, 0.03, 1.0, should_fail=True),
    Case("p99 x1.5", 0.01, 0.01, 1.5, should_fail=True),
    Case("equal", 0.01, 0.01, 1.0, should_fail=False),
)


@dataclass(frozen=True)
class Step:
    errors: int
    requests: int
    base_errors: int
    base_requests: int
    p99s: tuple[float, ...]
    base_p99s: tuple[float, ...]


def generate(case: Case, rng: np.random.Generator) -> Step:
    """One step's per-minute metrics for each side."""
    p99s, base_p99s = [], []
    for _ in range(MINUTES):
        canary = rng.lognormal(np.log(MEDIAN_MS * case.canary_slowdown), SIGMA, CANARY_PER_MINUTE)
        base = rng.lognormal(np.log(MEDIAN_MS), SIGMA, BASELINE_PER_MINUTE)
        p99s.append(float(np.percentile(canary, 99)))
        base_p99s.append(float(np.percentile(base, 99)))
    requests, base_requests = CANARY_PER_MINUTE * MINUTES, BASELINE_PER_MINUTE * MINUTES
    return Step(
        errors=int(rng.binomial(requests, case.canary_error)),
        requests=requests,
        base_errors=int(rng.binomial(base_requests, case.base_error)),
        base_requests=base_requests,
        p99s=tuple(p99s),
        base_p99s=tuple(base_p99s),
    )


def judgment_fails(step: Step, rules: list[Rule], policy: Policy) -> bool:
    """Whether the judgment fails the step (with the default weights a score is 0, 50 or
    100: never marginal, which would bake the step again)."""
    counts = Counts(step.errors, step.requests, step.base_errors, step.base_requests)
    judged = [
        judge_counts(rules[0], counts, policy),
        judge_samples(rules[1], Samples(step.p99s, step.base_p99s), policy),
    ]
    return score_step(rules, judged, policy).outcome != "pass"


def threshold_fails(step: Step) -> bool:
    """The gate before the judgment: a rate above the threshold and the baseline's, or a
    worst p99 above the threshold and the baseline's."""
    rate = 100 * step.errors / step.requests
    base_rate = 100 * step.base_errors / step.base_requests
    if rate > max(ERROR_THRESHOLD_PERCENT, base_rate):
        return True
    return max(step.p99s) > max(P99_THRESHOLD_MS, *step.base_p99s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    print(f"{'case':<18} {'runs':>5} {'judgment fails':>15} {'threshold fails':>16}")
    rates: dict[str, tuple[float, float]] = {}
    for number, case in enumerate(CASES):
        rng = np.random.default_rng(1000 + number)
        judged = thresholds = 0
        for _ in range(runs):
            step = generate(case, rng)
            judged += judgment_fails(step, RULES, POLICY)
            thresholds += threshold_fails(step)
        rates[case.name] = (100 * judged / runs, 100 * thresholds / runs)
        print(
            f"{case.name:<18} {runs:>5} {rates[case.name][0]:>14.1f}% {rates[case.name][1]:>15.1f}%"
        )
    power = min((rates[c.name] for c in CASES if c.should_fail), key=lambda r: r[0])
    (false,) = [rates[c.name] for c in CASES if not c.should_fail]
    print(
        f"canary judgment: power {power[0]:.1f}% (threshold gate {power[1]:.1f}%), "
        f"false positives {false[0]:.1f}% (threshold gate {false[1]:.1f}%) over {runs} runs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
