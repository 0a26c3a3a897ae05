"""Faults at the calls that change state, in the shared sandbox (local/reliability.py).

The injection points are found, not listed: each scenario runs once without a fault
while the handlers' calls are recorded. make test injects a bounded sample of them, each
fault kind three times, across every scenario; `python -m bench.reliability` injects
every kind at every point."""

from __future__ import annotations

import pytest

from local import reliability
from local.embedded import EmbeddedAws
from local.faults import Kind
from local.reliability import Outcome, Point, Scenario
from phoenix.release.spec import STEP_CALLS, step_handler

ROLLBACK_HANDLER = "phoenix.rollback.runtime.handler.lambda_handler"
# What every function may do for its logs, traces, key and on-failure queue.
PLATFORM = {"logs", "xray", "kms", "sqs"}
# Granted for what Auto Scaling does with the caller's permissions when a group update or
# an instance refresh launches from a template (not calls of the handler's own).
IMPLIED = {"ec2:RunInstances", "iam:PassRole", "ec2:CreateTags"}
# The one handler that calls CreateTags itself (it tags the AMIs it keeps).
TAGS_ITSELF = "phoenix.release.handlers.finalize.lambda_handler"
# Declared calls that change state which none of the scenarios makes, and what makes them
# (each is exercised by the integration test named).
NOT_IN_SCENARIOS = {
    # an execution stopped before its end handling (test_cleanup.py)
    ("release_cleanup", "elasticloadbalancing:ModifyListener"),
    ("release_cleanup", "ssm:PutParameter"),
    ("release_cleanup", "autoscaling:UpdateAutoScalingGroup"),
    ("release_cleanup", "autoscaling:RollbackInstanceRefresh"),
    ("release_cleanup", "autoscaling:CancelInstanceRefresh"),
    ("release_cleanup", "events:PutEvents"),
    # a rolling release whose gate fails (test_rolling_rollback.py)
    ("release_rollback", "autoscaling:RollbackInstanceRefresh"),
    ("release_rollback", "autoscaling:CancelInstanceRefresh"),
    ("release_rollback", "autoscaling:StartInstanceRefresh"),
    # the first release of an AMI that is still another fleet's rollback target, and a
    # retired rollback target (test_rollback_targets.py)
    ("release_finalize", "ec2:DeleteTags"),
    ("release_finalize", "dynamodb:PutItem"),
    # a rollback after the window starts a release of the AMI before (test_rollback.py)
    ("rollback", "states:StartExecution"),
    # a person's decision on a held canary step (test_release.py); an answer Step
    # Functions does not take gives the token back (tests/rollback/test_canary_decisions.py)
    ("rollback", "states:SendTaskSuccess"),
    ("rollback", "states:SendTaskFailure"),
}


# How each bad release ends: stopped by the rollback function when its alarm fires
# (ABORTED), or by its own Catch when its gate fails (FAILED); every other one succeeds.
ENDED = {
    "canary rolled back by its alarm": "ABORTED",
    "blue_green rolled back by its gate": "FAILED",
    "rolling rolled back by its alarm": "ABORTED",
}


@pytest.fixture(scope="module")
def found(aws: EmbeddedAws) -> list[tuple[Scenario, list[Point], Outcome]]:
    return list(reliability.injection_points(aws))


def test_without_a_fault_every_scenario_keeps_every_invariant(
    found: list[tuple[Scenario, list[Point], Outcome]],
) -> None:
    for scenario, points, outcome in found:
        assert not outcome.violations, (scenario.name, outcome.violations)
        assert points, scenario.name
        assert outcome.status == ENDED.get(scenario.name, "SUCCEEDED"), scenario.name


def test_the_points_are_the_declared_calls_that_change_state(
    aws: EmbeddedAws, found: list[tuple[Scenario, list[Point], Outcome]]
) -> None:
    # What each release step and the rollback function may do (their roles: the grant
    # tests hold each to exactly what its code calls), beyond every function's logs,
    # traces and on-failure queue
    granted = reliability.granted_calls(aws)
    handlers = [step_handler(step) for step in STEP_CALLS] + [ROLLBACK_HANDLER]
    declared = {
        (handler, action)
        for handler in handlers
        for action in granted[handler]
        if reliability.changes_state(action) and action.split(":")[0] not in PLATFORM
    }
    reached = {(p.handler, p.action) for _, points, _ in found for p in points}
    assert {(h, a) for h, a in reached if h in handlers} <= declared
    # Every declared call that changes state is a point, or is named above with the test
    # that makes it (the launch a group update implies is not a call of the handler; and
    # a scenario may reach a named one, as finalize untags an AMI the sandbox's earlier
    # releases left tagged)
    named = {
        (ROLLBACK_HANDLER if step == "rollback" else step_handler(step), action)
        for step, action in NOT_IN_SCENARIOS
    }
    implied = {
        (h, a) for h, a in declared if a in IMPLIED and (h, a) != (TAGS_ITSELF, "ec2:CreateTags")
    }
    missing = declared - reached - implied
    assert missing <= named, sorted(missing - named)


Found = list[tuple[Scenario, list[Point], Outcome]]


def _sample(found: Found) -> list[tuple[Scenario, Point, Kind]]:
    """Each kind three times, across the scenarios, at points spread over each list."""
    kinds = list(Kind)
    chosen = []
    for number, (scenario, points, _) in enumerate(found):
        for kind in kinds[number % 2 :: 2]:
            at = (number * 5 + kinds.index(kind) * 3) % len(points)
            chosen.append((scenario, points[at], kind))
    return chosen


def test_a_sample_of_faults_leaves_every_fleet_serving(
    aws: EmbeddedAws, found: list[tuple[Scenario, list[Point], Outcome]]
) -> None:
    chosen = _sample(found)
    assert {kind for _, _, kind in chosen} == set(Kind)
    outcomes = [reliability.inject(aws, scenario, point, kind) for scenario, point, kind in chosen]
    for outcome in outcomes:
        assert outcome.served, reliability.describe(outcome)  # the fault was met
    broken = [reliability.describe(o) for o in outcomes if not o.survived]
    assert not broken, broken
