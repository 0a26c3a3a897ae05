"""The drift check's judgment of one fleet (phoenix/drift/runtime/check.py): what it
finds, and what it lets be while a release or a rollback window explains it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.stub import Stubber

from phoenix.drift.handlers.check import handle
from phoenix.drift.runtime.check import DriftSettings, Facts, find
from phoenix.kernel.clients import Clients
from phoenix.kernel.observed import Instance, ObservedSlot

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
GOOD, OLD, NEW, ROGUE = (f"ami-0{c * 16}" for c in "abcd")
SPEC = {
    "name": "web",
    "slots": {"blue": {"group": "web-blue"}, "green": {"group": "web-green"}},
}


def _params(blue: str = "100", green: str = "0", **extra: str) -> dict[str, str]:
    params = {"/phoenix/sandbox/web/ami": GOOD}
    for slot, weight, minimum in (("blue", blue, "2"), ("green", green, "0")):
        params[f"/phoenix/sandbox/web/{slot}/weight"] = weight
        params[f"/phoenix/sandbox/web/{slot}/min-size"] = minimum
        params[f"/phoenix/sandbox/web/{slot}/launch-template-version"] = "3"
    return params | extra


def _slot(weight: int, amis: list[str], *, version: str = "3", min_size: int = 0) -> ObservedSlot:
    return ObservedSlot(
        desired=len(amis),
        min_size=min_size,
        launch_template_version=version,
        weight=weight,
        instances={f"i-{n:017x}": Instance("InService", ami) for n, ami in enumerate(amis)},
    )


def _facts(
    item: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    **slots: ObservedSlot | None,
) -> Facts:
    observed = {"blue": _slot(100, [GOOD, GOOD], min_size=2), "green": _slot(0, [])} | slots
    return Facts("sandbox", SPEC, params or _params(), item or {}, observed, NOW)


def _kinds(facts: Facts) -> list[tuple[str, str, str]]:
    return [(f.kind, f.slot, f.found) for f in find(facts).findings]


def test_a_fleet_as_the_controller_left_it_has_no_drift() -> None:
    assert _kinds(_facts()) == []


def test_an_instance_on_another_ami_and_an_edited_group_are_found() -> None:
    blue = _slot(100, [GOOD, ROGUE], version="4", min_size=2)
    drift = find(_facts(blue=blue))
    assert [(f.kind, f.found, f.expected) for f in drift.findings] == [
        ("instance AMI", ROGUE, GOOD),
        ("launch template version", "4", "3"),
    ]
    assert drift.findings[0].resource == "i-00000000000000001"
    assert drift.pointer == GOOD


def test_weights_minimum_and_an_idle_slot_s_instances_are_found() -> None:
    blue = _slot(90, [GOOD, GOOD], min_size=1)
    green = _slot(10, [GOOD])
    assert _kinds(_facts(blue=blue, green=green)) == [
        ("weight", "blue", "90"),
        ("min size", "blue", "1"),
        ("weight", "green", "10"),
        ("idle capacity", "green", "1"),
    ]


def test_an_empty_idle_slot_s_version_is_the_next_release_s_to_write() -> None:
    assert _kinds(_facts(green=_slot(0, [], version="7"))) == []
    assert _kinds(_facts(green=_slot(0, [GOOD], version="7")))[0] == (
        "launch template version", "green", "7",
    )  # fmt: skip


def test_a_missing_group_is_found() -> None:
    assert _kinds(_facts(green=None)) == [("idle capacity", "green", "no group")]


def test_a_release_in_flight_may_run_its_ami_and_moves_the_rest() -> None:
    # Given a release of NEW holding the lock, half its traffic moved
    held = {
        "lock_owner": "web-1",
        "lock_expires": (NOW + timedelta(hours=1)).isoformat(),
        "flight": {"release": "web-1", "to_ami": NEW},
    }
    green = _slot(50, [NEW, NEW])
    blue = _slot(50, [GOOD, GOOD, ROGUE], min_size=2)
    # Then only an AMI neither serves nor releases is drift
    assert _kinds(_facts(held, blue=blue, green=green)) == [("instance AMI", "blue", ROGUE)]
    # and once the lock has expired, the fleet is checked as a free one
    expired = held | {"lock_expires": (NOW - timedelta(minutes=1)).isoformat()}
    assert ("instance AMI", "green", NEW) in _kinds(_facts(expired, blue=blue, green=green))


def test_inside_a_rollback_window_the_old_slot_keeps_the_ami_before() -> None:
    window = {
        "warm_slot": {
            "release": "web-1",
            "old_slot": "blue",
            "previous_ami": OLD,
            "until": (NOW + timedelta(minutes=10)).isoformat(),
        }
    }
    params = _params(blue="0", green="100")
    blue = _slot(0, [OLD, OLD], min_size=2)
    green = _slot(100, [GOOD, GOOD], min_size=0)
    params["/phoenix/sandbox/web/green/min-size"] = "0"
    assert _kinds(_facts(window, params, blue=blue, green=green)) == []
    # a while after the window (its release retires the old slot a step or two after it
    # ends), the old slot's instances and AMI are drift
    retiring = {
        "warm_slot": window["warm_slot"] | {"until": (NOW - timedelta(minutes=9)).isoformat()}
    }
    assert _kinds(_facts(retiring, params, blue=blue, green=green)) == []
    over = {"warm_slot": window["warm_slot"] | {"until": (NOW - timedelta(minutes=11)).isoformat()}}
    assert [k for k, _, _ in _kinds(_facts(over, params, blue=blue, green=green))] == [
        "instance AMI",
        "instance AMI",
        "idle capacity",
    ]


def test_a_foreign_or_malformed_event_is_refused_before_any_call() -> None:
    settings = DriftSettings(
        environment="sandbox", service_name="phoenix-drift", table_name="ledger", region="us-east-1"
    )
    aws = Clients("us-east-1")
    stubbers = [
        Stubber(getattr(aws, s))
        for s in ("ssm", "dynamodb", "autoscaling", "events", "cloudformation")
    ]
    for stubber in stubbers:
        stubber.activate()  # no call expected: any call raises
    for event in ({"check": "drift", "environment": "production"}, {"source": "aws.events"}, "x"):
        assert handle(event, settings, aws)["action"] == "refused"
    for stubber in stubbers:
        stubber.assert_no_pending_responses()


def test_a_rollback_drill_may_run_its_ami_in_its_slot_while_it_holds_the_fleet() -> None:
    # Given a drill holding the fleet, one instance of OLD in the idle slot
    drill = {
        "lock_owner": "drill-20261202T115500Z",
        "lock_expires": (NOW + timedelta(minutes=25)).isoformat(),
        "drill": {"id": "drill-20261202T115500Z", "ami": OLD, "slot": "green"},
    }
    green = _slot(0, [OLD])
    # Then that is no drift, but the same AMI in the other slot is
    assert _kinds(_facts(drill, green=green)) == []
    blue = _slot(100, [GOOD, OLD], min_size=2)
    assert _kinds(_facts(drill, blue=blue, green=green)) == [("instance AMI", "blue", OLD)]
