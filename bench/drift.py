"""The drift check's AWS calls: constant in instances, batched across fleets.

config/sandbox.yaml's fleet copied N times (default 40), deployed by the real CDK CLI into
the embedded AWS, then the drift check run as its schedule runs it (its function invoked
with the schedule's input) with every fleet's serving group at its 2 instances, then at 4.
Each run's calls are counted by action (local/api_calls.py) and every run must find no
drift. Then the rollback drills' function runs once the same way, with no drill due (the
fleets have nothing to roll back to yet): what each of its runs costs at rest. Prints the
calls of each run by action; the last line:

    drift: N fleets, 2 -> 4 instances each: C -> C calls a run (x1.00), P calls a fleet

    .venv/bin/python -m bench.drift [--fleets 40]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.deploy_scale import config_with
from bench.quiet import logs_to_file
from local.api_calls import recording
from local.embedded import EmbeddedAws

DRIFT_FUNCTION = "DriftFunction"  # the drift check's function's name contains this
DRILLS_FUNCTION = "DrillsFunction"
RUN = {
    DRIFT_FUNCTION: {"check": "drift", "environment": "sandbox"},
    DRILLS_FUNCTION: {"drill": "run", "environment": "sandbox"},
}


def _run(
    aws: EmbeddedAws, named: str = DRIFT_FUNCTION
) -> tuple[Counter[str], dict[str, object], float]:
    """One run of the function `named` as its schedule runs it: its calls by action, its
    answer, its seconds here."""
    lam = aws.client("lambda")
    (function,) = [
        f["FunctionName"] for f in lam.list_functions()["Functions"] if named in f["FunctionName"]
    ]
    started = time.perf_counter()
    with recording() as calls:
        answer = lam.invoke(FunctionName=function, Payload=json.dumps(RUN[named]).encode())
    seconds = time.perf_counter() - started
    made = Counter(action for _, caller, action in calls.sequence if named in caller)
    return made, json.loads(answer["Payload"].read()), seconds


def _scale(aws: EmbeddedAws, names: list[str], instances: int) -> None:
    autoscaling = aws.client("autoscaling")
    for name in names:
        autoscaling.set_desired_capacity(
            AutoScalingGroupName=f"phoenix-sandbox-{name}-blue", DesiredCapacity=instances
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleets", type=int, default=40)
    fleets = parser.parse_args().fleets
    runs: dict[int, tuple[Counter[str], dict[str, object], float]] = {}
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "config"
        folder.mkdir()
        names = config_with(fleets, folder)
        with logs_to_file("drift") as log, EmbeddedAws() as aws:
            aws.deploy("sandbox", outdir=Path(work) / "cdk.out", config_dir=folder)
            for instances in (2, 4):
                _scale(aws, names, instances)
                runs[instances] = _run(aws)
            drills = _run(aws, DRILLS_FUNCTION)
    print(f"handler logs in {log}")
    for instances, (made, answer, seconds) in runs.items():
        print(f"{fleets} fleets, {instances} instances each: {sum(made.values())} calls "
              f"({seconds:.1f} s here); answer {answer}")  # fmt: skip
        for action, count in sorted(made.items()):
            print(f"    {count:>5}  {action}")
    made, answer, seconds = drills
    print(f"drills, {fleets} fleets, none due: {sum(made.values())} calls ({seconds:.1f} s here)")
    for action, count in sorted(made.items()):
        print(f"    {count:>5}  {action}")
    if answer != {"action": "ran", "drills": {}}:
        print(f"drills: a run with no drill due answered {answer}")
        return 1
    if any(
        answer.get("drifted") or answer.get("action") != "checked" for _, answer, _ in runs.values()
    ):
        print("drift: a run found drift in fleets left as deployed, or did not run")
        return 1
    few, many = (sum(runs[n][0].values()) for n in (2, 4))
    print(
        f"drift: {fleets} fleets, 2 -> 4 instances each: {few} -> {many} calls a run "
        f"(x{many / few:.2f}), {many / fleets:.2f} calls a fleet"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
