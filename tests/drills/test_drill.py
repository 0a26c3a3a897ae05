"""Rollback drills (phoenix/drills/runtime/drill.py), call by call against botocore's
models (Stubber): when a drill is due, what a rollback target must still be, and that a
foreign input is refused before any call. tests/integration/test_drills.py runs them in
the embedded AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from phoenix.drills.handlers.drill import handle
from phoenix.drills.runtime.drill import DrillSettings, is_due, target_problem
from phoenix.kernel.clients import Clients

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
WEEK = 7 * 86400
TARGET = "ami-0aaaaaaaaaaaaaaa1"
SNAPSHOT = "snap-0bbbbbbbbbbbbbbb2"
SETTINGS = DrillSettings(
    environment="sandbox", service_name="phoenix-drills", table_name="ledger", region="us-east-1"
)


def _at(delta: timedelta) -> str:
    return (NOW + delta).isoformat()


READY = {"previous_good_ami": TARGET, "last_drill_at": _at(-timedelta(days=8))}


@pytest.mark.parametrize(
    ("spec", "item", "due"),
    [
        ({"drill_every_seconds": WEEK}, READY, True),
        ({"drill_every_seconds": WEEK}, {"previous_good_ami": TARGET}, True),  # never drilled
        ({"drill_every_seconds": 0}, READY, False),  # drills off
        ({"drill_every_seconds": WEEK}, READY | {"last_drill_at": _at(-timedelta(days=6))}, False),
        ({"drill_every_seconds": WEEK}, {"last_drill_at": _at(-timedelta(days=8))}, False),
        ({"drill_every_seconds": WEEK}, READY | {"paused": True}, False),
        (
            {"drill_every_seconds": WEEK},
            READY | {"lock_owner": "web-1", "lock_expires": _at(timedelta(hours=1))},
            False,
        ),
        (
            {"drill_every_seconds": WEEK},
            READY | {"lock_owner": "web-1", "lock_expires": _at(-timedelta(minutes=1))},
            True,  # a holder whose time ran out
        ),
        ({"drill_every_seconds": WEEK}, READY | {"warm_slot": {"previous_ami": TARGET}}, False),
        ({"drill_every_seconds": WEEK}, READY | {"drill": {"id": "drill-1"}}, False),
        (
            {"drill_every_seconds": WEEK},
            READY | {"last_drill_at": _at(-timedelta(minutes=61)), "last_drill_outcome": "failed"},
            True,
        ),
        (
            {"drill_every_seconds": WEEK},
            READY | {"last_drill_at": _at(-timedelta(minutes=59)), "last_drill_outcome": "failed"},
            False,
        ),
    ],
    ids=[
        "a week since the last",
        "never drilled",
        "drills off",
        "drilled six days ago",
        "nothing to roll back to",
        "paused",
        "a release holds it",
        "a dead release's lock",
        "inside a rollback window",
        "a drill under way",
        "an hour after a failed drill",
        "within the hour after a failed drill",
    ],
)
def test_a_drill_is_due_only_when_nothing_else_holds_the_fleet(
    spec: dict[str, Any], item: dict[str, Any], due: bool
) -> None:
    assert is_due(spec, item, NOW) is due


def _described(ec2: Stubber, image: dict[str, Any] | None) -> None:
    ec2.add_response(
        "describe_images", {"Images": [image] if image else []}, {"ImageIds": [TARGET]}
    )


IMAGE = {
    "ImageId": TARGET,
    "State": "available",
    "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAPSHOT}}],
}


def test_a_rollback_target_that_is_there_with_its_snapshot_has_no_problem() -> None:
    aws = Clients("us-east-1")
    with Stubber(aws.ec2) as ec2:
        _described(ec2, IMAGE)
        ec2.add_response(
            "describe_snapshots",
            {"Snapshots": [{"SnapshotId": SNAPSHOT}]},
            {"SnapshotIds": [SNAPSHOT]},
        )
        assert target_problem(aws, TARGET) == ""
        ec2.assert_no_pending_responses()


def test_a_deregistered_target_is_named() -> None:
    aws = Clients("us-east-1")
    with Stubber(aws.ec2) as ec2:
        ec2.add_client_error("describe_images", service_error_code="InvalidAMIID.NotFound")
        assert target_problem(aws, TARGET) == f"the rollback target {TARGET} is deregistered"
        _described(ec2, None)
        assert target_problem(aws, TARGET) == f"the rollback target {TARGET} is deregistered"


def test_a_target_not_available_or_without_its_snapshot_is_named() -> None:
    aws = Clients("us-east-1")
    with Stubber(aws.ec2) as ec2:
        _described(ec2, IMAGE | {"State": "disabled"})
        assert (
            target_problem(aws, TARGET)
            == f"the rollback target {TARGET} is disabled, not available"
        )
        _described(ec2, IMAGE)
        ec2.add_client_error("describe_snapshots", service_error_code="InvalidSnapshot.NotFound")
        assert target_problem(aws, TARGET) == (
            f"the snapshot {SNAPSHOT} of the rollback target {TARGET} is gone"
        )


def test_a_foreign_or_malformed_input_is_refused_before_any_call() -> None:
    aws = Clients("us-east-1")
    stubbers = [Stubber(getattr(aws, s)) for s in ("ssm", "dynamodb", "autoscaling", "ec2")]
    for stubber in stubbers:
        stubber.activate()  # no call expected: any call raises
    for event in ({"drill": "run", "environment": "production"}, {"check": "drift"}, "x"):
        assert handle(event, SETTINGS, aws)["action"] == "refused"
    for stubber in stubbers:
        stubber.assert_no_pending_responses()
