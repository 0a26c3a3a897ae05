"""A release plan's cost by the number of fleets, in the embedded AWS.

An environment of N blue_green fleets (config/sandbox.yaml's fleet, copied; no bake or
rollback window of their own, so what is measured is the plan) and a plan of 4 waves:
one box, then the rest in three waves of at most 10 releases at once, each wave baking
30 minutes and needing 100 requests. One healthy image goes through it. Per fleet:
the AWS calls phoenix's handlers made (plan and release functions) and the states every
execution entered (the plan's and each release's); the most history events any execution
had; the largest input any state of the plan received (Step Functions allows 256 KB);
the plan's simulated time without its bakes, and the real seconds it took.

    .venv/bin/python -m bench.plan [--fleets 10 100]

Last line: `plan: N fleets in 4 waves; C calls and T transitions per fleet; at most H
history events in one execution` for the largest N.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.quiet import logs_to_file
from local.api_calls import recording
from local.embedded import EmbeddedAws

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "config" / "sandbox.yaml"
WAVES, BAKE_MINUTES, MIN_REQUESTS, AT_ONCE = 4, 30, 100, 10


@dataclass(frozen=True)
class Measured:
    fleets: int
    status: str
    calls: int
    transitions: int
    most_history: int
    plan_history: int
    largest_state: int  # bytes: the largest input a state of the plan received
    simulated_minutes: float
    seconds: float


def config_with(fleets: int, folder: Path) -> None:
    """sandbox.yaml's fleet copied `fleets` times (blue_green, no bake, no window) and a
    plan of WAVES waves."""
    config = yaml.safe_load(BASE.read_text())
    names = [f"web{n}" for n in range(fleets)]
    config["fleets"] = [
        {
            "name": name,
            "strategy": "blue_green",
            "image_pipeline": "golden",
            "capacity": {"min": 1, "max": 2},
            "blue_green": {"bake_time_minutes": 0, "rollback_window_minutes": 0},
        }
        for name in names
    ]
    rest = names[1:]
    size = math.ceil(len(rest) / (WAVES - 1))
    groups = [names[:1]] + [rest[i : i + size] for i in range(0, len(rest), size)]
    config["plans"] = [
        {
            "name": "golden",
            "image_pipeline": "golden",
            "waves": [
                {
                    "name": f"wave-{number}",
                    "fleets": group,
                    "max_concurrency": min(AT_ONCE, len(group)),
                    "bake_minutes": BAKE_MINUTES,
                    "min_requests": MIN_REQUESTS,
                }
                for number, group in enumerate(groups)
            ],
        }
    ]
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(config))


def measure(fleets: int) -> Measured:
    from local import clock, eventbridge  # noqa: PLC0415 - once the embedded AWS is importable

    with tempfile.TemporaryDirectory() as work, EmbeddedAws() as aws:
        folder = Path(work) / "config"
        folder.mkdir()
        config_with(fleets, folder)
        aws.deploy("sandbox", outdir=Path(work) / "cdk.out", config_dir=folder)
        stepfunctions = aws.client("stepfunctions")
        machines = {m["name"]: m["stateMachineArn"] for m in stepfunctions.list_state_machines()[
            "stateMachines"
        ]}  # fmt: skip
        plan = machines["phoenix-sandbox-plan-golden"]
        began, simulated = time.perf_counter(), clock.elapsed()
        with recording() as calls:
            aws.bake(pipeline="golden", version="2.0.0")
            while True:
                eventbridge.drain()
                runs = stepfunctions.list_executions(stateMachineArn=plan)["executions"]
                if runs and runs[0]["status"] != "RUNNING":
                    break
                time.sleep(0.2)
        seconds = time.perf_counter() - began
        minutes = (clock.elapsed() - simulated) / 60 - WAVES * BAKE_MINUTES
        histories = {
            execution["executionArn"]: _history(stepfunctions, execution["executionArn"])
            for machine in (plan, machines["phoenix-sandbox-release"])
            for execution in _executions(stepfunctions, machine)
        }
    entered = sum(
        1 for events in histories.values() for e in events if e["type"].endswith("StateEntered")
    )
    return Measured(
        fleets=fleets,
        status=runs[0]["status"],
        calls=calls.total(),
        transitions=entered,
        most_history=max(len(events) for events in histories.values()),
        plan_history=len(histories[runs[0]["executionArn"]]),
        largest_state=max(
            len(str(e.get("stateEnteredEventDetails", {}).get("input", "")).encode())
            for e in histories[runs[0]["executionArn"]]
        ),
        simulated_minutes=minutes,
        seconds=seconds,
    )


def _executions(stepfunctions: Any, machine: str) -> list[dict[str, Any]]:
    pages = stepfunctions.get_paginator("list_executions")
    return [e for page in pages.paginate(stateMachineArn=machine) for e in page["executions"]]


def _history(stepfunctions: Any, execution: str) -> list[dict[str, Any]]:
    pages = stepfunctions.get_paginator("get_execution_history")
    return [e for page in pages.paginate(executionArn=execution) for e in page["events"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleets", type=int, nargs="+", default=[10, 100])
    sizes = parser.parse_args().fleets
    results: list[Measured] = []
    with logs_to_file("plan") as log:
        for fleets in sizes:
            results.append(measure(fleets))
    print(f"handler logs in {log}")
    print(
        f"{'fleets':>6} {'status':>9} {'calls':>6} {'/fleet':>7} {'transitions':>11} "
        f"{'/fleet':>7} {'max history':>11} {'plan history':>12} {'state B':>8} "
        f"{'sim min':>8} {'real s':>7}"
    )
    for m in results:
        print(
            f"{m.fleets:>6} {m.status:>9} {m.calls:>6} {m.calls / m.fleets:>7.1f} "
            f"{m.transitions:>11} {m.transitions / m.fleets:>7.1f} {m.most_history:>11} "
            f"{m.plan_history:>12} {m.largest_state:>8} {m.simulated_minutes:>8.0f} "
            f"{m.seconds:>7.1f}"
        )
    first, last = results[0], results[-1]
    if len(results) > 1:
        calls = (last.calls / last.fleets) / (first.calls / first.fleets)
        steps = (last.transitions / last.fleets) / (first.transitions / first.fleets)
        print(
            f"per fleet, {last.fleets} vs {first.fleets} fleets: calls x{calls:.2f}, "
            f"transitions x{steps:.2f}"
        )
    print(
        f"plan: {last.fleets} fleets in {WAVES} waves; {last.calls / last.fleets:.1f} calls and "
        f"{last.transitions / last.fleets:.1f} transitions per fleet; at most "
        f"{last.most_history} history events in one execution"
    )
    return 0 if all(m.status == "SUCCEEDED" for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
