"""A release plan in the embedded AWS: tests/integration/config_plan/waves.yaml (two
fleets in a primary region and a disaster recovery region, three waves) deployed with
the CDK CLI,
images baked as the pipeline bakes them (distributed to both regions), and the plan's
state machine running each wave's releases: here with startExecution.sync:2, in the DR
region through the plan function. Beside it `waves-next` (promoted from `waves`):
what waves' plan released, it releases after a bake and an approval; what rolled back
in waves, it refuses."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from local import eventbridge
from local.cloudformation import aws_client
from local.embedded import ACCOUNT, EmbeddedAws
from local.fleet_view import FleetView, ledger_item
from local.rehearsal.waves import (
    DR,
    ENVIRONMENT,
    PLAN,
    PRIMARY,
    decide,
    plan_runs,
    run_item,
    serving,
    wait_for,
)
from phoenix.kernel.names import execution_name, plan_state_machine
from tests.integration.conftest import SharedSandbox

CONFIG = Path(__file__).resolve().parent / "config_plan"
FLEETS = ("web", "api")
NEXT = "waves-next"  # promoted from waves
# What each test baked, for the promotion tests after it.
_baked: dict[str, dict[str, str]] = {}

# A plan's history grows with its waves, not its fleets: its start and end, then about
# forty events a wave (window, map run, outcome, bake, request count, next).
HISTORY_FIXED, HISTORY_PER_WAVE = 20, 40


@pytest.fixture(scope="module")
def aws(
    tmp_path_factory: pytest.TempPathFactory, shared_sandbox: SharedSandbox
) -> Iterator[EmbeddedAws]:
    shared_sandbox.end()  # one embedded AWS per process at a time
    with EmbeddedAws(region=PRIMARY) as embedded:
        embedded.deploy(
            f"{ENVIRONMENT},{NEXT}", outdir=tmp_path_factory.mktemp("cdk.out"), config_dir=CONFIG
        )
        yield embedded


def _run() -> str:
    """The plan run the image just baked started (the one run not seen before)."""
    (run,) = [r["name"] for r in plan_runs() if r["name"] not in _seen]
    _seen.add(run)
    return run


_seen: set[str] = set()


def _history(run: str) -> list[dict[str, object]]:
    stepfunctions = aws_client("stepfunctions", PRIMARY)
    (execution,) = [r for r in plan_runs() if r["name"] == run]
    events: list[dict[str, object]] = []
    pages = stepfunctions.get_paginator("get_execution_history")
    for page in pages.paginate(executionArn=execution["executionArn"]):
        events += page["events"]
    return events


def test_a_healthy_image_goes_through_every_wave_and_the_dr_region_last(aws: EmbeddedAws) -> None:
    # Given the six fleets on their first AMIs
    # When a healthy image is baked and distributed to both regions
    baked = aws.bake(ENVIRONMENT, PLAN, "healthy", "2.0.0", distribute=True)
    _baked["healthy"] = baked.amis
    run = _run()
    assert wait_for(aws, run, {"succeeded", "halted"}, timeout=240) == "succeeded"

    # Then every fleet serves its region's copy of the image
    now = serving(aws, FLEETS)
    for fleet in FLEETS:
        assert now[(fleet, PRIMARY)] == {baked.amis[PRIMARY]}, fleet
        assert now[(fleet, DR)] == {baked.amis[DR]}, fleet
    # And the DR region's releases were the plan's: started in the DR region, after the
    # primary's waves (the DR region's own trigger left the image to the plan)
    dr_releases = _releases(DR)
    primary_releases = _releases(PRIMARY)
    assert set(dr_releases) == set(FLEETS) == set(primary_releases)
    assert min(dr_releases.values()) > max(primary_releases.values())
    assert primary_releases["web"] < primary_releases["api"]
    # And the plan's history stays a few events a wave
    history = _history(run)
    assert len(history) < HISTORY_FIXED + 3 * HISTORY_PER_WAVE, len(history)
    assert history[-1]["type"] == "ExecutionSucceeded"


def _releases(region: str) -> dict[str, datetime]:
    """Each fleet's latest release execution in `region`: when it started."""
    stepfunctions = aws_client("stepfunctions", region)
    machine = next(
        m["stateMachineArn"]
        for m in stepfunctions.list_state_machines()["stateMachines"]
        if m["name"] == f"phoenix-{ENVIRONMENT}-release"
    )
    started: dict[str, datetime] = {}
    for execution in stepfunctions.list_executions(stateMachineArn=machine)["executions"]:
        fleet = execution["name"].split("-", 1)[0]
        started[fleet] = max(started.get(fleet, execution["startDate"]), execution["startDate"])
    return started


def _next_runs() -> dict[str, dict[str, object]]:
    machine = plan_state_machine(NEXT, PLAN)
    arn = f"arn:aws:states:{PRIMARY}:{ACCOUNT}:stateMachine:{machine}"
    runs = aws_client("stepfunctions", PRIMARY).list_executions(stateMachineArn=arn)
    return {str(r["name"]): r for r in runs["executions"]}


def _next_item(aws: EmbeddedAws, run: str) -> dict[str, Any]:
    return ledger_item(aws, f"PLAN#{PLAN}", f"RUN#{run}", NEXT, PRIMARY)


def _wait_next(aws: EmbeddedAws, run: str, statuses: set[str], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while (status := str(_next_item(aws, run).get("status", {}).get("S", ""))) not in statuses:
        assert time.monotonic() < deadline, f"{run} is {status or 'not recorded'}: " + str(
            _next_item(aws, run).get("reason")
        )
        eventbridge.drain()
        time.sleep(0.05)
    return status


def _put(detail_type: str, detail: Mapping[str, object]) -> str:
    (entry,) = aws_client("events", PRIMARY).put_events(
        Entries=[{"Source": "phoenix", "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )["Entries"]
    eventbridge.drain()
    return str(entry["EventId"])


def test_the_next_environment_releases_what_the_plan_proved_once_a_person_approves(
    aws: EmbeddedAws,
) -> None:
    # Given the healthy image went through every wave of `waves` (the test before): its
    # Plan Succeeded started waves-next's plan, which baked and now awaits approval (the
    # next test comes after it: a run waiting on its token moves the simulated clock)
    (run,) = _next_runs()
    assert _wait_next(aws, run, {"awaiting approval"}) == "awaiting approval"
    assert FleetView.read(aws, "web", NEXT, PRIMARY).serving_amis != {_baked["healthy"][PRIMARY]}

    # When a person approves it
    approval = {"environment": NEXT, "plan": PLAN, "run": run, "requested_by": "alice",
                "reason": "waves looked good"}  # fmt: skip
    _put("Promotion Approved", approval)

    # Then waves-next's fleet serves the same AMI, and who approved and why is recorded
    assert _wait_next(aws, run, {"succeeded", "failed", "abandoned"}, 240) == "succeeded"
    assert FleetView.read(aws, "web", NEXT, PRIMARY).serving_amis == {_baked["healthy"][PRIMARY]}
    (decision,) = [d["M"] for d in _next_item(aws, run)["decisions"]["L"]]
    assert (decision["decision"]["S"], decision["by"]["S"]) == ("approve", "alice")
    history = aws_client("stepfunctions", PRIMARY).get_execution_history(
        executionArn=str(_next_runs()[run]["executionArn"]), maxResults=1000
    )["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history
               if "stateEnteredEventDetails" in e]  # fmt: skip
    assert (
        entered.index("PromotionBake")
        < entered.index("AwaitApproval")
        < entered.index("Promotable")
    )


def test_a_bad_fleet_halts_the_plan_which_resumes_and_is_abandoned_on_request(
    aws: EmbeddedAws,
) -> None:
    # Given every fleet on the healthy image
    before = serving(aws, FLEETS)

    # When a slow image is baked: api (800 ms at most) rolls back in wave 2
    _baked["slow"] = aws.bake(ENVIRONMENT, PLAN, "slow", "3.0.0", distribute=True).amis
    run = _run()
    wait_for(aws, run, {"halted"})
    halted = run_item(aws, run)

    # Then the plan halted at wave 2, naming api and why
    assert halted["halted_wave"]["S"] == "primary"
    assert halted["reason"]["S"].startswith("api in us-east-1: alarm ")

    # When it is resumed: wave 3 (the DR region) runs, where api rolls back too
    decide(run, "Plan Resume Requested", "web is fine; try the DR region", wave="primary")
    deadline = time.monotonic() + 240
    while run_item(aws, run)["halted_wave"]["S"] != "dr":
        assert time.monotonic() < deadline, run_item(aws, run)
        wait_for(aws, run, {"halted"}, timeout=240)
        time.sleep(0.05)

    # And a request meant for the first halt acts nowhere
    decide(run, "Plan Abandon Requested", "late", wave="primary")
    # When it is abandoned
    decide(run, "Plan Abandon Requested", "api is too slow on v3", wave="dr")
    assert wait_for(aws, run, {"abandoned"}) == "abandoned"

    # Then api serves what it did in both regions, and each decision is recorded once
    after = serving(aws, FLEETS)
    assert after[("api", PRIMARY)] == before[("api", PRIMARY)]
    assert after[("api", DR)] == before[("api", DR)]
    assert after[("web", DR)] != before[("web", DR)]
    decisions = [d["M"] for d in run_item(aws, run)["decisions"]["L"]]
    assert [(d["decision"]["S"], d["wave"]["S"]) for d in decisions] == [
        ("resume", "primary"),
        ("abandon", "dr"),
    ]
    assert _history(run)[-1]["type"] == "ExecutionFailed"


def test_the_next_environment_refuses_an_image_that_rolled_back_in_waves(
    aws: EmbeddedAws,
) -> None:
    # Given the slow image rolled back api in waves (the test before): its Release
    # Rolled Back events reached waves-next, from both regions
    # When waves' plan says it succeeded with that image anyway (as a resumed halt could)
    detail = {"environment": ENVIRONMENT, "plan": PLAN, "run": "forced", "status": "succeeded",
              "image": f"arn:aws:imagebuilder:{PRIMARY}:{ACCOUNT}:image/phoenix-{ENVIRONMENT}-"
                       f"{PLAN}/3.0.0/1",
              "amis": {PRIMARY: _baked["slow"][PRIMARY]}}  # fmt: skip
    run = execution_name(_put("Plan Succeeded", detail))

    # Then waves-next's run ends at once, refused with where and why it rolled back
    assert _wait_next(aws, run, {"failed", "succeeded", "awaiting approval"}) == "failed"
    reason = str(_next_item(aws, run)["reason"]["S"])
    assert f"AMI {_baked['slow'][PRIMARY]} (us-east-1) rolled back in waves (fleet api" in reason
    assert "AwaitApproval" not in json.dumps(
        aws_client("stepfunctions", PRIMARY).get_execution_history(
            executionArn=str(_next_runs()[run]["executionArn"]), maxResults=1000
        )["events"],
        default=str,
    )
