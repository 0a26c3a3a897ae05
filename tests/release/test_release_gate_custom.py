"""The canary gate with a custom CloudWatch metric of the fleet's own (docs/judgment.md):
each side read with its slot's resources filled in, judged per minute."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from botocore.stub import ANY

from phoenix.release.handlers.gate import handle
from phoenix.release.runtime.gate import GateFailedError
from tests.release.release_state import (
    GROUPS,
    SETTINGS,
    StubbedAws,
    expect_step,
    release_state,
    step_input,
)
from tests.release.test_release_gate import (  # the gate tests' stubs
    CANARY,
    Captured,
    _alarms,
    _at_step,
    _metrics,
    _targets,
)


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


CHECKOUTS = {
    "name": "failed checkouts",
    "namespace": "Shop",
    "metric": "CheckoutFailureRate",
    "statistic": "p90",
    "dimensions": {"AutoScalingGroupName": "{auto_scaling_group}", "Service": "shop"},
    "allowed_ratio": 1.5,
    "critical": True,
}


def test_a_custom_metric_is_read_per_slot_and_judged_per_minute(aws: StubbedAws) -> None:
    # Given a fleet judging its own metric, critical, whose canary fails twice as often
    step = _at_step(25)
    queries = Captured()
    _targets(aws, healthy=3)
    _alarms(aws)
    healthy = CANARY["no worse than a bad baseline"][0]
    values = healthy | {
        "canary_custom0": [2.1, 1.9, 2.0, 2.2, 1.8],
        "baseline_custom0": [1.0, 0.9, 1.1, 1.0, 0.95],
    }
    _metrics(aws, queries, datetime.fromisoformat(step["at"]), **values)
    expect_step(aws, "canary judged", traffic=25, outcome="fail", score=ANY, judged=ANY)
    state = release_state(step=step)
    state["fleet_spec"]["judgment"] = {"metrics": [CHECKOUTS]}

    # When the step is judged, it fails on that metric alone, named with its numbers
    with pytest.raises(GateFailedError) as raised:
        handle(step_input(state, "judge"), SETTINGS, aws.clients)
    assert "critical metric failed: failed checkouts fail: canary 2, baseline 1, ratio 2" in str(
        raised.value
    )

    # Then each side's query named the slot's own group, at one-minute periods
    custom = {
        q["Id"]: (
            q["MetricStat"]["Metric"]["Namespace"],
            q["MetricStat"]["Metric"]["MetricName"],
            q["MetricStat"]["Stat"],
            {d["Name"]: d["Value"] for d in q["MetricStat"]["Metric"]["Dimensions"]},
            q["MetricStat"]["Period"],
        )
        for q in queries.value
        if "custom" in q["Id"]
    }
    assert custom == {
        f"{role}_custom0": (
            "Shop",
            "CheckoutFailureRate",
            "p90",
            {"AutoScalingGroupName": GROUPS[slot], "Service": "shop"},
            60,
        )
        for role, slot in (("canary", "green"), ("baseline", "blue"))
    }
