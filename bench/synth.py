"""How long the sandbox app takes to synthesize, next to a one-bucket CDK app.

Each synthesis runs as the CDK CLI runs it: a fresh Python process executing the app
with CDK_OUTDIR set, so jsii's start-up is counted as a user pays it. The two apps
alternate within one run, so both see the same machine load; the ratio of the medians
is the figure to watch (target: at most 1.3).

    .venv/bin/python bench/synth.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
APPS = {
    "sandbox app": (REPO / "app.py", {"env": "sandbox"}),
    "one-bucket app": (REPO / "bench" / "one_bucket_app.py", {}),
}
TARGET_RATIO = 1.3


def app_environment(outdir: str, context: dict[str, Any]) -> dict[str, str]:
    """The environment the CDK CLI gives an app it runs: where to write, the context."""
    return {
        **os.environ,
        "CDK_OUTDIR": outdir,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }


def synthesize_once(script: Path, context: dict[str, str]) -> float:
    with tempfile.TemporaryDirectory() as outdir:
        environment = app_environment(outdir, context)
        started = time.perf_counter()
        # the app's own output (warnings, notices) is not the benchmark's: kept for a failure
        run = subprocess.run(
            [sys.executable, str(script)],
            cwd=REPO,
            env=environment,
            capture_output=True,
            check=False,
            text=True,
            timeout=300,
        )
        if run.returncode:
            raise RuntimeError(f"{script.name} failed:\n{run.stdout}{run.stderr}")
        elapsed = time.perf_counter() - started
        if not list(Path(outdir).glob("**/*.template.json")):
            raise RuntimeError(f"{script.name} wrote no template")
        return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = max(5, parser.parse_args().rounds)
    samples: dict[str, list[float]] = {name: [] for name in APPS}
    for _ in range(rounds):
        for name, (script, context) in APPS.items():
            samples[name].append(synthesize_once(script, context))
    medians = {name: statistics.median(times) for name, times in samples.items()}
    for name, times in samples.items():
        shown = " ".join(f"{t:.2f}" for t in times)
        print(f"{name:15s} median {medians[name]:.2f} s  (runs: {shown})")
    ratio = medians["sandbox app"] / medians["one-bucket app"]
    verdict = "within" if ratio <= TARGET_RATIO else "over"
    print(f"ratio sandbox / one-bucket: {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
