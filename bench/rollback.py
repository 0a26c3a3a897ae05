"""The critical path of an alarm-driven rollback, per strategy, in the embedded AWS.

For each fleet of tests/integration/config (canary, blue_green, rolling; without api's
pre-traffic hook, which would stop the bad AMI before its alarm could): a good
release, then a release of an AMI that passes health checks but answers half its
requests with 5xx. Its alarm starts the rollback function; printed: the function's AWS
calls up to the one that restores traffic (target: 2, the ledger read and one
ModifyListener or RollbackInstanceRefresh), and the real time from the alarm event to
that call.

    .venv/bin/python -m bench.rollback
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.quiet import logs_to_file
from local import eventbridge
from local.api_calls import recording
from local.embedded import EmbeddedAws
from local.rehearsal import critical_path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "tests" / "integration" / "config"
FLEETS = {"canary": "web", "blue_green": "api", "rolling": "worker"}
TARGET_CALLS = 2
ALARMS = "bench-alarms"


def unhooked(scratch: str) -> Path:
    """The config with no pre-traffic hook: api's smoke test would stop the erroring AMI
    before any traffic reaches it, and no alarm would fire."""
    config = yaml.safe_load((CONFIG / "sandbox.yaml").read_text())
    for fleet in config["fleets"]:
        fleet.pop("pre_traffic_hook", None)
    folder = Path(scratch) / "config"
    folder.mkdir()
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(config))
    return folder


def main() -> int:
    alarms: list[float] = []
    rows: list[tuple[str, list[str], float | None]] = []
    with (
        logs_to_file("bench-rollback") as logs,
        tempfile.TemporaryDirectory() as scratch,
        EmbeddedAws() as aws,
    ):
        aws.deploy("sandbox", outdir=Path(scratch) / "cdk.out", config_dir=unhooked(scratch))
        pattern = {"source": ["aws.cloudwatch"], "detail": {"state": {"value": ["ALARM"]}}}
        aws.client("events").put_rule(Name=ALARMS, EventPattern=json.dumps(pattern))
        eventbridge.tap(ALARMS, lambda _event: alarms.append(time.perf_counter()))
        for number, (strategy, fleet) in enumerate(FLEETS.items()):
            good = aws.bake(pipeline="bench", version=f"2.{number}.0")
            aws.request_release(fleet, good.ami, requested_by="bench")
            aws.advance(300)
            bad = aws.bake(pipeline="bench", version=f"2.{number}.1", health="erroring")
            alarms.clear()
            with recording() as calls:
                aws.request_release(fleet, bad.ami, requested_by="bench")
            path, restored = critical_path(calls, "ReleaseRollback")
            took = restored - alarms[0] if restored is not None and alarms else None
            rows.append((strategy, path, took))
    print("alarm-driven rollback of a release in flight: the rollback function's calls")
    print(f"{'strategy':<11} {'calls':>5}  {'alarm to restored':>17}  critical path")
    failures = []
    for strategy, path, took in rows:
        shown = " -> ".join(path) or "(the release's own gate rolled it back first)"
        seconds = f"{took:.3f} s" if took is not None else "-"
        print(f"{strategy:<11} {len(path):>5}  {seconds:>17}  {shown}")
        if not path or len(path) > TARGET_CALLS:
            failures.append(strategy)
    print(f"handler logs: {logs}")
    print(f"target: {TARGET_CALLS} calls; over or missing: {', '.join(failures) or 'none'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
