"""Faults at every call that changes state, in the embedded AWS (local/reliability.py).

Each scenario (a release of each strategy; a canary and a rolling release rolled back by
their alarms; a blue_green release rolled back by its own gate) runs once without a
fault to find the calls it makes that change state; then once per call and fault kind
(throttled, 5xx, timed out after taking effect, process died after the call), with the
invariants checked after each run, in the integration tests' sandbox. Then the stateful
chaos test's sequences (tests/chaos.py), `--sequences` of them, in the chaos test's own
sandbox (short bakes and windows, as `make test` runs 200 of them).

    .venv/bin/python -m bench.reliability [--sequences 1000]

Prints a table of kind x injection points x runs x survived x lost, each violation, and
last: `reliability: F faults injected, S survived, L lost; C chaos sequences, V invariant
violations`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.quiet import logs_to_file
from local import reliability
from local.embedded import EmbeddedAws
from local.faults import Kind
from tests.chaos import CONFIG as CHAOS_CONFIG
from tests.chaos import World, run_in

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "tests" / "integration" / "config"


def faults(aws: EmbeddedAws) -> list[reliability.Outcome]:
    outcomes: list[reliability.Outcome] = []
    for scenario, points, baseline in reliability.injection_points(aws):
        if baseline.violations:
            raise SystemExit(f"{scenario.name} fails without a fault: {baseline.violations}")
        for point in points:
            for kind in Kind:
                outcomes.append(reliability.inject(aws, scenario, point, kind))
    return outcomes


def _show(line: str = "") -> None:
    """Print now, past the redirect of stdout to the handlers' log (bench/quiet.py)."""
    out = sys.__stdout__
    assert out is not None
    out.write(line + "\n")
    out.flush()


def _fault_table(outcomes: list[reliability.Outcome]) -> None:
    by_kind: dict[Kind, list[reliability.Outcome]] = defaultdict(list)
    for outcome in outcomes:
        assert outcome.kind is not None
        by_kind[outcome.kind].append(outcome)
    _show("faults at every call that changes state (one at a time, invariants after each)")
    _show(f"{'kind':<30} {'points':>6} {'runs':>5} {'survived':>8} {'lost':>5}")
    for kind, runs in by_kind.items():
        points = {(o.scenario, str(o.point)) for o in runs}
        survived = sum(o.survived for o in runs)
        lost = sum(o.lost for o in runs)
        _show(f"{kind.value:<30} {len(points):>6} {len(runs):>5} {survived:>8} {lost:>5}")
    for outcome in outcomes:
        if not outcome.survived:
            _show(f"  {outcome.scenario}, {outcome.point}, {outcome.kind}: {outcome.violations}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=1000)
    options = parser.parse_args()
    started = time.perf_counter()
    with logs_to_file("bench-reliability") as logs, tempfile.TemporaryDirectory() as scratch:
        with EmbeddedAws() as aws:
            aws.deploy("sandbox", outdir=Path(scratch) / "faults", config_dir=CONFIG)
            outcomes = faults(aws)
        _fault_table(outcomes)
        _show(f"({time.perf_counter() - started:.0f} s so far)")
        with EmbeddedAws() as aws:  # one embedded AWS at a time in a process
            aws.deploy("sandbox", outdir=Path(scratch) / "chaos", config_dir=CHAOS_CONFIG)
            world = World(aws, strict=False)
            run_in(world, options.sequences, steps=3)
    took = time.perf_counter() - started
    _show(f"chaos: {world.sequences} sequences of at most 3 steps (fixed seed)")
    for what, times in sorted(world.tally.items()):
        _show(f"  {what:<30} {times:>6}")
    for violation in world.violations:
        _show(f"  violated: {violation}")
    _show(f"(logs: {logs}; {took:.0f} s)")
    survived = sum(o.survived for o in outcomes)
    lost = sum(o.lost for o in outcomes)
    _show(
        f"reliability: {len(outcomes)} faults injected, {survived} survived, {lost} lost; "
        f"{world.sequences} chaos sequences, {len(world.violations)} invariant violations"
    )
    return 0 if survived == len(outcomes) and not world.violations else 1


if __name__ == "__main__":
    sys.exit(main())
