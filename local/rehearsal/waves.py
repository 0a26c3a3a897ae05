"""The rehearsal's release plan (local/rehearsal/waves.yaml): one image through six
fleets in three waves across two regions, a bad fleet in wave 2 halting wave 3.

v5 answers in 2.5 s (a slow AMI): `web` (one box) and `worker` tolerate it, `api` (which
must answer within 800 ms) does not, so its release rolls back, the plan halts before
the disaster recovery region's wave, and an operator abandons it (`Plan Abandon Requested`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from local import eventbridge
from local.cloudformation import aws_client
from local.embedded import ACCOUNT, EmbeddedAws
from local.fleet_view import FleetView, ledger_item
from local.rehearsal import Rehearsal, Scenario
from phoenix.kernel.names import plan_state_machine

ENVIRONMENT, PLAN = "waves", "golden"
PRIMARY, DR = "us-east-1", "us-west-2"
FLEETS = ("web", "api", "worker")
WAVES = {"one-box": [("web", PRIMARY)], "primary": [("api", PRIMARY), ("worker", PRIMARY)]}
WAVES["dr"] = [(fleet, DR) for fleet in FLEETS]


def serving(aws: EmbeddedAws, fleets: tuple[str, ...] = FLEETS) -> dict[tuple[str, str], set[str]]:
    """The AMIs each fleet serves, by fleet and region."""
    return {
        (fleet, region): FleetView.read(aws, fleet, ENVIRONMENT, region).serving_amis
        for region in (PRIMARY, DR)
        for fleet in fleets
    }


def run_item(aws: EmbeddedAws, run: str) -> dict[str, Any]:
    return ledger_item(aws, f"PLAN#{PLAN}", f"RUN#{run}", ENVIRONMENT, PRIMARY)


def plan_runs() -> list[dict[str, Any]]:
    stepfunctions = aws_client("stepfunctions", PRIMARY)
    machine = (
        f"arn:aws:states:{PRIMARY}:{ACCOUNT}:stateMachine:{plan_state_machine(ENVIRONMENT, PLAN)}"
    )
    runs: list[dict[str, Any]] = stepfunctions.list_executions(stateMachineArn=machine)[
        "executions"
    ]
    return runs


def wait_for(aws: EmbeddedAws, run: str, statuses: set[str], timeout: float = 120.0) -> str:
    """Wait (in real time) until the run's ledger item has one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        eventbridge.drain()
        status = str(run_item(aws, run).get("status", {}).get("S", ""))
        if status in statuses:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"plan run {run} is {status or 'not recorded'}, not {statuses}")
        time.sleep(0.05)


def decide(run: str, decision: str, reason: str, wave: str | None = None) -> None:
    """Put `Plan Resume Requested` / `Plan Abandon Requested` as an operator would."""
    response = aws_client("events", PRIMARY).put_events(
        Entries=[
            {
                "Source": "phoenix",
                "DetailType": decision,
                "Detail": json.dumps(
                    {
                        "environment": ENVIRONMENT,
                        "plan": PLAN,
                        "run": run,
                        "requested_by": "rehearsal",
                        "reason": reason,
                    }
                    | ({"wave": wave} if wave else {})
                ),
            }
        ]
    )
    if response["FailedEntryCount"]:
        raise RuntimeError(f"{decision} not accepted: {response['Entries']}")


def plan_halts_on_a_bad_fleet(aws: EmbeddedAws, rehearsal: Rehearsal, scenario: Scenario) -> None:
    before = serving(aws)
    rehearsal.note("bake v5 (slow)", f"pipeline {PLAN} of {ENVIRONMENT}, both regions")
    v5 = aws.bake(ENVIRONMENT, PLAN, "slow", "5.0.0", distribute=True)
    rehearsal.amis["v5"] = v5.ami
    rehearsal.baked("5.0.0", v5.amis.values())
    (run,) = [r["name"] for r in plan_runs()]
    wait_for(aws, run, {"halted"})
    # At once: while the run waits for a decision, its token wait moves the simulated
    # clock (local/clock.py), and nothing it could show changes until the decision.
    decide(run, "Plan Abandon Requested", "api is too slow on v5")
    wait_for(aws, run, {"abandoned"})
    done = run_item(aws, run)
    after = serving(aws)
    scenario.check("one plan run for the image", len(plan_runs()) == 1)
    scenario.check("wave 1: web serves v5", after[("web", PRIMARY)] == {v5.amis[PRIMARY]})
    scenario.check("wave 2: worker serves v5", after[("worker", PRIMARY)] == {v5.amis[PRIMARY]})
    scenario.check("wave 2: api rolled back", after[("api", PRIMARY)] == before[("api", PRIMARY)])
    scenario.check(
        "halted at wave 2, naming api",
        done["halted_wave"]["S"] == "primary" and done["reason"]["S"].startswith("api "),
    )
    scenario.check(
        "wave 3 never started: the DR region serves what it did",
        all(after[(fleet, DR)] == before[(fleet, DR)] for fleet in FLEETS),
    )
    (decision,) = done["decisions"]["L"]
    scenario.check(
        "abandoned by a Plan Abandon Requested event, who and why recorded",
        decision["M"]["by"]["S"] == "rehearsal" and decision["M"]["decision"]["S"] == "abandon",
    )
    rehearsal.plan_view = {key: _named(amis, rehearsal, v5.amis) for key, amis in after.items()}


def _named(amis: set[str], rehearsal: Rehearsal, v5: dict[str, str]) -> str:
    names = dict.fromkeys(v5.values(), "v5")
    names.update({ami: version for version, ami in rehearsal.amis.items() if version != "v5"})
    return ", ".join(sorted(names.get(ami, f"first ({ami})") for ami in amis)) or "-"
