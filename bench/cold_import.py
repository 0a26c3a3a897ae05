"""Each handler's cold import time as a ratio to a bare `import boto3`.

A cold start imports the handler module before the first event. Each measurement is a
fresh Python process that times its own import (interpreter start-up excluded); the
handlers and boto3 alternate within one run, so all see the same machine load, and the
ratio of medians is the figure (target: at most 1.5). Handlers import boto3 only when a
path first makes a call (phoenix/kernel/clients.py).

    .venv/bin/python -m bench.cold_import [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.5
BASELINE = "boto3"


def handlers() -> list[str]:
    """Every Lambda handler module: phoenix/<component>/handlers/*.py and
    phoenix/<component>/runtime/handler.py."""
    paths = [
        *(REPO / "phoenix").glob("*/handlers/*.py"),
        *(REPO / "phoenix").glob("*/runtime/handler.py"),
    ]
    return sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in paths
        if path.name != "__init__.py"
    )


def import_seconds(module: str) -> float:
    probe = (
        "import time; began = time.perf_counter(); "
        f"import {module}; print(time.perf_counter() - began)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    modules = [BASELINE, *handlers()]
    times: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(rounds):
        for module in modules:
            times[module].append(import_seconds(module))
    baseline = statistics.median(times[BASELINE])
    print(f"cold import, median of {rounds} fresh processes; baseline `import boto3`")
    print(f"{'module':<42} {'ms':>7} {'ratio':>6}")
    print(f"{BASELINE:<42} {baseline * 1000:>7.1f} {1.0:>6.2f}")
    over = []
    for module in modules[1:]:
        median = statistics.median(times[module])
        ratio = median / baseline
        print(f"{module:<42} {median * 1000:>7.1f} {ratio:>6.2f}")
        if ratio > TARGET_RATIO:
            over.append(module)
    print(f"target: every ratio at most {TARGET_RATIO}; over: {', '.join(over) or 'none'}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
