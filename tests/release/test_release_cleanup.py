"""The release cleanup: an execution that ended TIMED_OUT, ABORTED or FAILED outside its
Catch paths is put right only while it still owns the fleet; and HoldLock (Stubber)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import ANY

from phoenix.kernel import attributes, ledger
from phoenix.release.handlers.cleanup import handle
from phoenix.release.runtime.cleanup import CleanupSettings, LockLostError
from phoenix.release.runtime.models import MalformedStepError
from tests.release.release_state import (
    AMI,
    GROUPS,
    LISTENER,
    POINTER,
    PREVIOUS_AMI,
    RELEASE_ID,
    STARTED_AT,
    TABLE,
    TARGET_GROUPS,
    StubbedAws,
    conditional_check_failed,
    expect_event,
    expect_put_parameter,
    expect_registered,
    expect_unlock,
    fleet_key,
    fleet_spec,
    parameter,
    release_key,
    release_state,
    step_input,
)

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:phoenix-sandbox-release"
EXECUTION = f"{MACHINE.replace(':stateMachine:', ':execution:')}:{RELEASE_ID}"
TIMEOUT = 27000
FLIGHT = {"release": RELEASE_ID, "active_slot": "blue", "target_slot": "green"}
FLIGHT |= {"strategy": "canary", "from_ami": PREVIOUS_AMI, "to_ami": AMI}


SETTINGS = CleanupSettings(
    **{"environment": "sandbox", "service_name": "t", "table_name": TABLE},
    **{"state_machine_arn": MACHINE, "execution_timeout_seconds": TIMEOUT},
)


def status_change(status: str = "ABORTED", **detail: Any) -> dict[str, Any]:
    """A `Step Functions Execution Status Change` event as AWS's sample shows it."""
    request = {"environment": "sandbox", "fleet": "web", "ami": AMI, "trigger": "t", "n": 1}
    started = int(STARTED_AT.timestamp() * 1000)
    fields: dict[str, Any] = {"executionArn": EXECUTION, "stateMachineArn": MACHINE}
    fields |= {"name": RELEASE_ID}
    fields |= {"status": status, "startDate": started, "stopDate": started + 3_600_000}
    fields |= {"input": json.dumps(request), "inputDetails": {"included": True}}
    fields |= {"output": None, "outputDetails": None, "error": None, "cause": None}
    return {
        **{"version": "0", "id": "315c1398-40ff-a850-213b-158f73e60175", "source": "aws.states"},
        **{"detail-type": "Step Functions Execution Status Change", "account": "123456789012"},
        **{"time": "2026-11-25T10:42:21Z", "region": "us-east-1", "resources": [EXECUTION]},
        "detail": fields | detail,
    }


@pytest.fixture
def aws() -> Iterator[StubbedAws]:
    stubbed = StubbedAws()
    yield stubbed
    stubbed.verify()


def _item(aws: StubbedAws, key: dict[str, Any], **values: Any) -> None:
    item = {**key, **{name: attributes.typed(value) for name, value in values.items()}}
    expected = {"TableName": TABLE, "Key": key, "ConsistentRead": True}
    aws.dynamodb.add_response("get_item", {"Item": item}, expected)


def _fleet_item(aws: StubbedAws, strategy: str = "canary", **values: Any) -> None:
    """web in the registry (the first call), then its ledger item."""
    expect_registered(aws, fleet_spec(strategy))
    _item(aws, fleet_key(), **values)


def _release_item(
    aws: StubbedAws, outcome: str = "in progress", steps: tuple[str, ...] = ()
) -> None:
    _item(aws, release_key(), outcome=outcome, steps=[{"step": step} for step in steps])


def _pointer(aws: StubbedAws, value: str) -> None:
    aws.ssm.add_response(
        "get_parameters",
        {"Parameters": [{"Name": POINTER, "Type": "String", "Value": value}]},
        {"Names": [POINTER]},
    )


def _updated(aws: StubbedAws, key: dict[str, Any], values: dict[str, Any], **more: Any) -> None:
    expected = {"TableName": TABLE, "Key": key, "UpdateExpression": ANY}
    aws.dynamodb.add_response(
        "update_item", {}, expected | {"ExpressionAttributeValues": values} | more
    )


def _closed(aws: StubbedAws, outcome: str, reason: str, good_ami: str | None = None) -> None:
    """The cleaned-up step, the release closed (and the fleet item, after a rollback)."""
    step = {"L": [{"M": {"step": {"S": "cleaned up"}, "at": ANY, "action": ANY}}]}
    at, appended = {":at": ANY}, {"ReturnValues": "UPDATED_OLD"}
    _updated(aws, release_key(), {":step": step, ":none": {"L": []}} | at, **appended)
    _updated(aws, release_key(), {":outcome": {"S": outcome}, ":reason": {"S": reason}} | at)
    if good_ami:
        fleet = {":ami": {"S": good_ami}, ":release": {"S": RELEASE_ID}, ":outcome": {"S": outcome}}
        _updated(aws, fleet_key(), fleet | at)


def _traffic_back(aws: StubbedAws) -> None:
    weights = [(TARGET_GROUPS["blue"], 100), (TARGET_GROUPS["green"], 0)]
    groups = [{"TargetGroupArn": group, "Weight": weight} for group, weight in weights]
    action = {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}
    aws.elbv2.add_response(
        "modify_listener", {}, {"ListenerArn": LISTENER, "DefaultActions": [action]}
    )
    expect_put_parameter(aws, parameter("blue", "weight"), "100")
    expect_put_parameter(aws, parameter("green", "weight"), "0")
    expect_put_parameter(aws, parameter("green", "min-size"), "0")
    emptied = {"AutoScalingGroupName": GROUPS["green"], "MinSize": 0, "DesiredCapacity": 0}
    aws.autoscaling.add_response("update_auto_scaling_group", {}, emptied)


@pytest.mark.parametrize(
    ("status", "error"), [("ABORTED", None), ("TIMED_OUT", None), ("FAILED", "States.Runtime")]
)
def test_a_release_that_owns_the_lock_mid_canary_is_put_back_and_closed(
    aws: StubbedAws, status: str, error: str | None
) -> None:
    # Given the execution still holds web's lock, 5% of the traffic on green
    _fleet_item(aws, lock_owner=RELEASE_ID, flight=FLIGHT)
    _release_item(aws, steps=("preflight passed", "new targets healthy"))
    _pointer(aws, PREVIOUS_AMI)
    reason = f"execution {status}" + (f": {error}: boom" if error else "")
    _traffic_back(aws)
    _closed(aws, "failed", reason)
    expect_unlock(aws)
    expect_event(aws, "Release Failed", from_ami=PREVIOUS_AMI, reason=reason)

    # When its end arrives
    cause = {"error": error, "cause": "boom"} if error else {}
    result = handle(status_change(status, **cause), SETTINGS, aws.clients)

    # Then traffic went back first, then the parameters, the slot, the ledger, the lock
    assert result["action"] == "cleaned"
    assert result["closed"] == "failed"
    assert aws.calls[4:6] == ["elbv2.ModifyListener", "ssm.PutParameter"]
    assert aws.calls[-2:] == ["dynamodb.UpdateItem", "events.PutEvents"]


@pytest.mark.parametrize(
    "item",
    [
        {},  # the lock is free: a Catch path or Succeed released it
        {"lock_owner": "web-another-release", "flight": {**FLIGHT, "release": "web-another"}},
        # the rollback function stopped it and finished: lock released, release closed
        {"rolled_back": RELEASE_ID, "last_outcome": "rolled back", "last_release": RELEASE_ID},
        # the rollback function claimed it and is finishing (it stops before it closes)
        {"lock_owner": RELEASE_ID, "rolled_back": RELEASE_ID, "flight": FLIGHT},
    ],
)
def test_a_fleet_the_release_no_longer_owns_is_left_alone(
    aws: StubbedAws, item: dict[str, Any]
) -> None:
    _fleet_item(aws, **item)

    result = handle(status_change("ABORTED"), SETTINGS, aws.clients)

    assert result["action"] == "nothing"
    assert aws.calls == ["ssm.GetParameters", "dynamodb.GetItem"]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (status_change(stateMachineArn=MACHINE.replace("sandbox", "prod")), "not this release's"),
        (status_change("SUCCEEDED"), "status SUCCEEDED"),
        (status_change("RUNNING"), "status RUNNING"),
        (status_change(name="web-other"), "is not web-other"),
        (status_change(input="not json"), "not a release request"),
        ({**status_change(), "source": "phoenix"}, "source"),
        ({**status_change(), "detail": {"status": "ABORTED"}}, "executionArn"),
        ("not an event", "not an object"),
    ],
)
def test_foreign_or_malformed_events_are_refused_with_no_call(
    aws: StubbedAws, event: Any, reason: str
) -> None:
    result = handle(event, SETTINGS, aws.clients)

    assert result["action"] == "refused"
    assert reason in result["reason"]
    assert aws.calls == []


def test_once_the_pointer_moved_the_new_ami_keeps_serving(aws: StubbedAws) -> None:
    # Given Succeed moved the pointer and died before it closed the release
    _fleet_item(aws, lock_owner=RELEASE_ID, flight=FLIGHT)
    _release_item(aws, steps=("pointer moved",))
    _pointer(aws, AMI)
    _closed(aws, "failed", "execution FAILED")
    expect_unlock(aws)
    expect_event(aws, "Release Failed")

    result = handle(status_change("FAILED"), SETTINGS, aws.clients)

    # Then nothing moved traffic: the release is closed failed and the lock freed
    assert "pointer had moved" in result["why"]
    assert "elbv2.ModifyListener" not in aws.calls


@pytest.mark.parametrize(("strategy", "closed"), [("canary", "rolled back"), ("rolling", "failed")])
def test_after_its_own_rollback_step_nothing_more_is_undone(
    aws: StubbedAws, strategy: str, closed: str
) -> None:
    # Given the release's Rollback step ran, and then its execution was stopped (a rolling
    # fleet's rollback refresh may still run: it is back only when that ends)
    _fleet_item(aws, strategy, lock_owner=RELEASE_ID, flight={**FLIGHT, "strategy": strategy})
    _release_item(aws, steps=("preflight passed", "rolled back"))
    good = PREVIOUS_AMI if closed == "rolled back" else None
    _closed(aws, closed, "execution ABORTED", good_ami=good)
    expect_unlock(aws)
    kind = "Release Rolled Back" if good else "Release Failed"
    expect_event(aws, kind, reason="execution ABORTED")

    result = handle(status_change("ABORTED"), SETTINGS, aws.clients)

    assert result["closed"] == closed
    reads = ("dynamodb.GetItem", "ssm.GetParameters")
    assert [c for c in aws.calls if not c.startswith((*reads, "dynamodb", "events"))] == []


@pytest.mark.parametrize(
    ("item", "outcome"),
    [
        ({"lock_owner": RELEASE_ID}, "succeeded"),  # RetireOldSlot's lock, stopped
        ({"lock_owner": RELEASE_ID, "flight": FLIGHT}, "failed"),  # closed, not unlocked
    ],
)
def test_a_release_already_closed_only_has_its_lock_freed(
    aws: StubbedAws, item: dict[str, Any], outcome: str
) -> None:
    _fleet_item(aws, **item)
    _release_item(aws, outcome=outcome)
    expect_unlock(aws)

    result = handle(status_change("ABORTED"), SETTINGS, aws.clients)

    assert (result["action"], result.get("closed")) == ("cleaned", None)


def test_a_release_stopped_before_its_flight_was_recorded_is_only_closed(aws: StubbedAws) -> None:
    _fleet_item(aws, lock_owner=RELEASE_ID)
    _release_item(aws)
    _closed(aws, "failed", "execution ABORTED")
    expect_unlock(aws)
    expect_event(aws, "Release Failed")

    handle(status_change("ABORTED"), SETTINGS, aws.clients)

    reads = ["ssm.GetParameters", *["dynamodb.GetItem"] * 2]
    writes = ["dynamodb.UpdateItem"] * 3
    assert aws.calls == [*reads, *writes, "events.PutEvents"]


GROUP = {"AutoScalingGroupName": GROUPS["blue"]}


def _refresh(aws: StubbedAws, status: str, *, forward: bool = True, started: int = 2) -> None:
    """web's latest refresh: `status`, started `started` minutes after the release."""
    refresh: dict[str, Any] = {"InstanceRefreshId": "r-0099", "Status": status, **GROUP}
    refresh |= {"StartTime": STARTED_AT + timedelta(minutes=started)}
    refresh |= {"Preferences": {"AutoRollback": forward}}
    found = {"InstanceRefreshes": [refresh]}
    aws.autoscaling.add_response("describe_instance_refreshes", found, {**GROUP, "MaxRecords": 1})


def _rolling(aws: StubbedAws) -> None:
    flight = {**FLIGHT, "strategy": "rolling", "target_slot": "blue"}
    _fleet_item(aws, "rolling", lock_owner=RELEASE_ID, flight=flight)
    _release_item(aws, steps=("instance refresh started",))
    _pointer(aws, PREVIOUS_AMI)


def _rolling_closed(aws: StubbedAws) -> dict[str, Any]:
    _closed(aws, "failed", "execution ABORTED")
    expect_unlock(aws)
    expect_event(aws, "Release Failed")
    return handle(status_change("ABORTED"), SETTINGS, aws.clients)


def test_this_releases_running_refresh_is_rolled_back(aws: StubbedAws) -> None:
    _rolling(aws)
    _refresh(aws, "InProgress")
    aws.autoscaling.add_response(
        "rollback_instance_refresh", {"InstanceRefreshId": "r-0099"}, GROUP
    )

    assert _rolling_closed(aws)["why"] == "refresh r-0099 rolled back"


def test_a_refresh_aws_will_not_roll_back_is_cancelled(aws: StubbedAws) -> None:
    _rolling(aws)
    _refresh(aws, "Baking")
    refused = ("rollback_instance_refresh", "IrreversibleInstanceRefresh")
    aws.autoscaling.add_client_error(*refused, expected_params=GROUP)
    aws.autoscaling.add_response("cancel_instance_refresh", {"InstanceRefreshId": "r-0099"}, GROUP)

    assert "cancelled" in _rolling_closed(aws)["why"]


@pytest.mark.parametrize(
    ("status", "forward", "started"),
    [
        ("Successful", True, 2),  # ended: instances left as they are
        ("Cancelled", True, 2),
        ("InProgress", True, -30),  # an earlier release's
        ("InProgress", False, 2),  # the release's own refresh back
        ("RollbackInProgress", True, 2),
        ("Cancelling", True, 2),
    ],
)
def test_instances_are_left_alone_without_a_running_refresh_of_this_release(
    aws: StubbedAws, status: str, forward: bool, started: int
) -> None:
    _rolling(aws)
    _refresh(aws, status, forward=forward, started=started)

    _rolling_closed(aws)

    assert [c for c in aws.calls if c.startswith("autoscaling.")] == [
        "autoscaling.DescribeInstanceRefreshes"
    ]


def _hold(aws: StubbedAws, held: bool) -> None:
    until = {"S": ledger.iso(STARTED_AT + timedelta(seconds=TIMEOUT))}
    params = {
        "TableName": TABLE,
        "Key": fleet_key(),
        "UpdateExpression": "SET lock_expires = :until",
    }
    params |= {"ConditionExpression": "lock_owner = :release AND lock_expires < :until"}
    params |= {"ExpressionAttributeValues": {":release": {"S": RELEASE_ID}, ":until": until}}
    if held:
        aws.dynamodb.add_response("update_item", {}, params)
    else:
        conditional_check_failed(aws.dynamodb)


def test_hold_lock_holds_it_until_the_execution_s_deadline(aws: StubbedAws) -> None:
    _hold(aws, held=True)

    result = handle(step_input(release_state(), action="hold"), SETTINGS, aws.clients)

    assert result == {"until": ledger.iso(STARTED_AT + timedelta(seconds=TIMEOUT))}


def test_hold_lock_changes_nothing_when_held_long_enough(aws: StubbedAws) -> None:
    _hold(aws, held=False)
    _item(aws, fleet_key(), lock_owner=RELEASE_ID, lock_expires="2099-01-01T00:00:00.000000Z")

    result = handle(step_input(release_state(), action="hold"), SETTINGS, aws.clients)

    assert result == {"until": "2099-01-01T00:00:00.000000Z"}


def test_hold_lock_fails_when_the_release_lost_its_lock(aws: StubbedAws) -> None:
    _hold(aws, held=False)
    _item(aws, fleet_key(), lock_owner="web-another-release")

    with pytest.raises(LockLostError, match="web-another-release"):
        handle(step_input(release_state(), action="hold"), SETTINGS, aws.clients)


def test_hold_lock_refuses_a_malformed_step_with_no_call(aws: StubbedAws) -> None:
    with pytest.raises(MalformedStepError):
        handle({"action": "hold", "state": {"fleet": "web"}}, SETTINGS, aws.clients)
    with pytest.raises(MalformedStepError, match="unknown action"):
        handle(step_input(release_state(), action="retire"), SETTINGS, aws.clients)
    assert aws.calls == []
