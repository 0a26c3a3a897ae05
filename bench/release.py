"""Release cost by fleet size: AWS calls made by the handlers and state transitions.

Deploys the sandbox with one fleet per strategy (tests/integration/config) into the
embedded AWS twice, with 2 and then 40 instances per fleet, releases a healthy image to
each fleet and counts, per release, the API calls the step handlers made and the states
the execution entered. The targets: both constant in the number of instances, and a
rolling release under 60 transitions however long its refresh runs.

    .venv/bin/python -m bench.release
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.quiet import logs_to_file
from local.api_calls import recording
from local.embedded import EmbeddedAws

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "tests" / "integration" / "config" / "sandbox.yaml"
FLEETS = {"rolling": "worker", "blue_green": "api", "canary": "web"}
SIZES = (2, 40)
MAX_ROLLING_TRANSITIONS = 60


@dataclass(frozen=True)
class Measured:
    status: str
    calls: int
    transitions: int
    simulated_minutes: float
    seconds: float


def sized_config(instances: int, folder: Path) -> Path:
    config = yaml.safe_load(CONFIG.read_text())
    for fleet in config["fleets"]:
        fleet["capacity"] = {"min": instances, "max": 2 * instances}
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(config))
    return folder


def measure(instances: int) -> dict[str, Measured]:
    from local import clock  # noqa: PLC0415 - after the embedded AWS is importable

    results: dict[str, Measured] = {}
    with tempfile.TemporaryDirectory() as scratch, EmbeddedAws() as aws:
        folder = sized_config(instances, Path(scratch))
        aws.deploy("sandbox", outdir=Path(scratch) / "cdk.out", config_dir=folder)
        for strategy, fleet in FLEETS.items():
            baked = aws.bake(pipeline="bench", version=f"2.0.{len(results)}")
            began, simulated = time.perf_counter(), clock.elapsed()
            with recording() as calls:
                execution = aws.request_release(fleet, baked.ami, requested_by="bench")
            history = aws.history(execution["executionArn"])
            results[strategy] = Measured(
                status=execution["status"],
                calls=calls.total(),
                transitions=sum(1 for e in history if e["type"].endswith("StateEntered")),
                simulated_minutes=(clock.elapsed() - simulated) / 60,
                seconds=time.perf_counter() - began,
            )
    return results


def main() -> int:
    with logs_to_file("bench-release") as logs:
        by_size = {size: measure(size) for size in SIZES}
    small, large = SIZES
    print(f"release cost, {small} vs {large} instances per fleet (one healthy release each)")
    header = (
        f"{'strategy':<11} {'calls':>6} {'calls':>6} {'ratio':>6}  {'trans.':>6} {'trans.':>6}"
        f" {'ratio':>6}  {'sim. min':>9}  {'wall s':>7}"
    )
    print(header)
    print(f"{'':<11} {small:>6} {large:>6} {'':>6}  {small:>6} {large:>6} {'':>6}  {large:>9}")
    failures: list[str] = []
    for strategy in FLEETS:
        a, b = by_size[small][strategy], by_size[large][strategy]
        print(
            f"{strategy:<11} {a.calls:>6} {b.calls:>6} {b.calls / a.calls:>6.2f}  "
            f"{a.transitions:>6} {b.transitions:>6} {b.transitions / a.transitions:>6.2f}  "
            f"{b.simulated_minutes:>9.0f}  {a.seconds + b.seconds:>7.1f}"
        )
        if {a.status, b.status} != {"SUCCEEDED"}:
            failures.append(f"{strategy}: releases ended {a.status} / {b.status}")
        if (a.calls, a.transitions) != (b.calls, b.transitions):
            failures.append(f"{strategy}: calls or transitions grow with the fleet")
    rolling = max(by_size[s]["rolling"].transitions for s in SIZES)
    print(f"rolling transitions: {rolling} (limit {MAX_ROLLING_TRANSITIONS})")
    if rolling >= MAX_ROLLING_TRANSITIONS:
        failures.append(f"rolling release took {rolling} transitions")
    print(f"handler logs: {logs}")
    for failure in failures:
        print(f"FAIL {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
