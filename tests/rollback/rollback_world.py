"""What the rollback function's tests share: its settings, the events it receives (a
CloudWatch alarm, a `phoenix` request), the fleet item as the ledger holds it, and every
call a rollback makes, queued on StubbedAws (Stubber)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.stub import ANY

from phoenix.kernel import attributes, clock, ledger
from phoenix.rollback.runtime.models import RollbackSettings as Settings
from tests.release.release_state import (
    AMI,
    GROUPS,
    LISTENER,
    PREVIOUS_AMI,
    RELEASE_ID,
    TABLE,
    TARGET_GROUPS,
    JsonContaining,
    StubbedAws,
    expect_put_parameter,
    fleet_key,
    fleet_spec,
    other,
    parameter,
    release_key,
)
from tests.sample_events import sample_event

SAMPLE_ALARM = sample_event("cloudwatch_alarm_state_change")
ALARM_NAME = "phoenix-sandbox-web-5xx-rate"
ALARM_REASON = f"alarm {ALARM_NAME}: {SAMPLE_ALARM['detail']['state']['reason']}"
ALARM_ID = SAMPLE_ALARM["id"]
REQUEST_ID = "7f3e9a1c-2b4d-4e6f-8a0b-1c2d3e4f5a6b"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:phoenix-sandbox-release"
EXECUTION = f"arn:aws:states:us-east-1:123456789012:execution:phoenix-sandbox-release:{RELEASE_ID}"
SLOTTED = ["blue_green", "canary"]


# --- settings and events ------------------------------------------------------------------


def settings() -> Settings:
    """The function's settings: nothing about fleets (those are in the registry)."""
    return Settings(
        environment="sandbox", service_name="t", table_name=TABLE, state_machine_arn=MACHINE
    )


def expect_fleets(
    aws: StubbedAws, event: dict[str, Any], strategy: str = "canary", more: tuple[str, ...] = ()
) -> None:
    """The registry read `event` makes (GetParameters), with `web` of `strategy` and the
    blue/green fleets `more` registered. A request reads its fleet; an alarm
    `phoenix-sandbox-<a>-<b>-...` reads each leading part of its name that can be a fleet's
    (`a`, `a-b`, ...)."""
    specs = {"web": fleet_spec(strategy)} | {
        name: fleet_spec("blue_green", name=name) for name in more
    }
    if event.get("source") == "aws.cloudwatch":
        parts = event["detail"]["alarmName"].removeprefix("phoenix-sandbox-").split("-")
        wanted = {"-".join(parts[:end]) for end in range(1, len(parts))}
        wanted = {name for name in wanted if re.fullmatch(r"[a-z][a-z0-9-]{0,23}", name)}
    else:
        wanted = {event["detail"]["fleet"]}
    names = [f"/phoenix-fleets/sandbox/{name}" for name in sorted(wanted)]
    found = [
        {"Name": f"/phoenix-fleets/sandbox/{name}", "Type": "String", "Value": json.dumps(spec)}
        for name, spec in sorted(specs.items())
        if name in wanted
    ]
    missing = [f"/phoenix-fleets/sandbox/{name}" for name in sorted(wanted - set(specs))]
    answer: dict[str, Any] = {"Parameters": found}
    if missing:
        answer["InvalidParameters"] = missing
    aws.ssm.add_response("get_parameters", answer, {"Names": names})


def alarm(name: str = ALARM_NAME, state: str = "ALARM") -> dict[str, Any]:
    """AWS's sample `CloudWatch Alarm State Change`, of the alarm `name`, now in `state`."""
    event = copy.deepcopy(SAMPLE_ALARM)
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]
    event["detail"]["alarmName"] = name
    event["detail"]["state"]["value"] = state
    return event


def request(detail_type: str, fleet: str = "web", reason: str = "incident 42") -> dict[str, Any]:
    """A `phoenix` request (Rollback Requested, Releases Paused, Releases Resumed)."""
    return {
        "version": "0",
        "id": REQUEST_ID,
        "detail-type": detail_type,
        "source": "phoenix",
        "account": "123456789012",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"fleet": fleet, "requested_by": "alice", "reason": reason},
    }


# --- the fleet item -----------------------------------------------------------------------


def in_flight(strategy: str = "canary", active: str = "blue", **flight: Any) -> dict[str, Any]:
    """A release holding the lock, with what preflight recorded of it (`flight`)."""
    target = active if strategy == "rolling" else other(active)
    recorded = {
        "release": RELEASE_ID,
        "strategy": strategy,
        "active_slot": active,
        "target_slot": target,
        "from_ami": PREVIOUS_AMI,
        "to_ami": AMI,
        "rollback": False,
    }
    return {
        "lock_owner": RELEASE_ID,
        "lock_expires": ledger.iso(clock.now() + timedelta(hours=6)),
        "active_release": RELEASE_ID,
        "last_good_ami": PREVIOUS_AMI,
        "flight": recorded | flight,
    }


def succeeded(
    *, window: timedelta | None, old: str = "blue", previous: str = PREVIOUS_AMI
) -> dict[str, Any]:
    """The fleet after the success of RELEASE_ID (AMI, from PREVIOUS_AMI), with its old
    slot warm until now + `window` (None: no window, as after a rolling release)."""
    item: dict[str, Any] = {
        "last_release": RELEASE_ID,
        "last_outcome": "succeeded",
        "last_good_ami": AMI,
        "previous_good_ami": previous,
        "last_ended_at": ledger.iso(clock.now() - timedelta(minutes=5)),
    }
    if window is not None:
        item["warm_slot"] = {
            "release": RELEASE_ID,
            "old_slot": old,
            "new_slot": other(old),
            "previous_ami": PREVIOUS_AMI,
            "until": ledger.iso(clock.now() + window),
        }
    return item


def expect_read(aws: StubbedAws, item: dict[str, Any] | None) -> None:
    """The fleet item, read consistently (None: there is none yet)."""
    typed = {name: attributes.typed(value) for name, value in (item or {}).items()}
    aws.dynamodb.add_response(
        "get_item",
        {} if item is None else {"Item": fleet_key() | typed},
        {"TableName": TABLE, "Key": fleet_key(), "ConsistentRead": True},
    )


# --- the calls of a rollback --------------------------------------------------------------


def expect_weights(aws: StubbedAws, serve: str, drop: str) -> None:
    """One ModifyListener: every request to `serve`, none to `drop` (in the template's order)."""
    weights = {serve: 100, drop: 0}
    groups = [{"TargetGroupArn": TARGET_GROUPS[s], "Weight": weights[s]} for s in ("blue", "green")]
    action = {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}
    aws.elbv2.add_response(
        "modify_listener", {}, {"ListenerArn": LISTENER, "DefaultActions": [action]}
    )


def expect_refresh_rolled_back(
    aws: StubbedAws, refused: str | None = None, status: str = "RollbackInProgress"
) -> None:
    """RollbackInstanceRefresh; when AWS refuses it, the refresh's status is read."""
    params = {"AutoScalingGroupName": GROUPS["blue"]}
    if refused is None:
        aws.autoscaling.add_response("rollback_instance_refresh", {}, params)
        return
    aws.autoscaling.add_client_error(
        "rollback_instance_refresh",
        service_error_code=refused,
        http_status_code=400,
        expected_params=params,
    )
    refresh = {
        "InstanceRefreshId": "r-1",
        "AutoScalingGroupName": GROUPS["blue"],
        "Status": status,
    }
    aws.autoscaling.add_response(
        "describe_instance_refreshes",
        {"InstanceRefreshes": [refresh]},
        {**params, "MaxRecords": 1},
    )


CLAIMS = {
    # the release still holds the lock, is in flight (not closed by its Succeed step), and
    # no other event claimed its rollback
    "in_flight": "lock_owner = :release AND attribute_exists(flight) AND "
    "(attribute_not_exists(rolled_back) OR rolled_back <> :release OR rolled_back_by = :event)",
    # its success still stands, the window's end has not retired the old slot and no
    # release holds the fleet but this one, finishing; or this same event claimed it and
    # did not finish
    "window": "(last_release = :release AND last_outcome = :succeeded "
    "AND attribute_exists(warm_slot) AND (attribute_not_exists(lock_owner) "
    "OR lock_expires < :now OR lock_owner = :release)) OR (rolled_back = :release "
    "AND rolled_back_by = :event AND attribute_exists(warm_slot))",
    # its success still stands; or this same event claimed it, its rollback release on
    "release": "(last_release = :release AND last_outcome = :succeeded) OR (rolled_back = "
    ":release AND rolled_back_by = :event AND last_release = :release)",
}


def claim_params(how: str, release: str = RELEASE_ID, event: str = ALARM_ID) -> dict[str, Any]:
    values: dict[str, Any] = {
        ":release": {"S": release},
        ":outcome": {"S": "rolled back"},
        ":event": {"S": event},
    }
    update = (
        "SET rolled_back = :release, rolled_back_by = :event, rolled_back_how = :how, "
        "last_outcome = :outcome"
    )
    values[":how"] = {"S": how}
    if how != "in_flight":
        values[":succeeded"] = {"S": "succeeded"}
    if how == "window":
        # the window rollback holds the fleet's lock for its few calls
        values |= {":now": ANY, ":owner": {"S": f"window-rollback-{release}"}, ":expires": ANY}
        update += ", lock_owner = :owner, lock_expires = :expires"
    return {
        "TableName": TABLE,
        "Key": fleet_key(),
        "UpdateExpression": update,
        "ConditionExpression": CLAIMS[how],
        "ExpressionAttributeValues": values,
    }


def expect_claim(
    aws: StubbedAws, how: str, refused: str | None = None, event: str = ALARM_ID
) -> None:
    """The conditional claim by `event` (`refused`: the error DynamoDB answers with)."""
    params = claim_params(how, event=event)
    if refused is None:
        aws.dynamodb.add_response("update_item", {}, params)
        return
    aws.dynamodb.add_client_error(
        "update_item", service_error_code=refused, http_status_code=400, expected_params=params
    )


def expect_stopped(
    aws: StubbedAws, reason: str, refused: str | None = None, release: str = RELEASE_ID
) -> None:
    execution = EXECUTION.replace(RELEASE_ID, release)
    params = {"executionArn": execution, "error": "RolledBack", "cause": reason}
    if refused is None:
        aws.stepfunctions.add_response(
            "stop_execution", {"stopDate": datetime(2026, 11, 25, tzinfo=UTC)}, params
        )
        return
    aws.stepfunctions.add_client_error(
        "stop_execution", service_error_code=refused, http_status_code=400, expected_params=params
    )


def expect_emptied(aws: StubbedAws, slot: str) -> None:
    """The slot's min size parameter to 0, then its group to 0."""
    expect_put_parameter(aws, parameter(slot, "min-size"), "0")
    aws.autoscaling.add_response(
        "update_auto_scaling_group",
        {},
        {"AutoScalingGroupName": GROUPS[slot], "MinSize": 0, "DesiredCapacity": 0},
    )


def expect_window_restored(aws: StubbedAws, old: str) -> None:
    """The controller's weights back on the old slot, and the pointer on PREVIOUS_AMI."""
    expect_put_parameter(aws, parameter(old, "weight"), "100")
    expect_put_parameter(aws, parameter(other(old), "weight"), "0")
    expect_put_parameter(aws, "/phoenix/sandbox/web/ami", PREVIOUS_AMI)


def expect_recorded(aws: StubbedAws, how: str, done: str, reason: str) -> None:
    """The `rolled back` step appended to the release item."""
    entry = attributes.typed({"step": "rolled back", "how": how, "action": done, "reason": reason})
    entry["M"] = {**entry["M"], "at": ANY}
    aws.dynamodb.add_response(
        "update_item",
        {"Attributes": {"last_step_at": {"S": "2026-11-25T11:59:00.000000Z"}}},
        {
            "TableName": TABLE,
            "Key": release_key(),
            "UpdateExpression": ANY,
            "ExpressionAttributeValues": {":step": {"L": [entry]}, ":none": {"L": []}, ":at": ANY},
            "ReturnValues": "UPDATED_OLD",
        },
    )


def expect_closed(aws: StubbedAws, reason: str, good: str = PREVIOUS_AMI) -> None:
    """The release item closed as rolled back, then the fleet item on the good AMI."""
    outcome = {"S": "rolled back"}
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": release_key(),
            "UpdateExpression": "SET outcome = :outcome, reason = :reason, ended_at = :at",
            "ExpressionAttributeValues": {
                ":outcome": outcome,
                ":reason": {"S": reason},
                ":at": ANY,
            },
        },
    )
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": "SET last_good_ami = :ami, last_release = :release, "
            "last_outcome = :outcome, last_ended_at = :at REMOVE flight, warm_slot",
            "ExpressionAttributeValues": {
                ":ami": {"S": good},
                ":release": {"S": RELEASE_ID},
                ":outcome": outcome,
                ":at": ANY,
            },
        },
    )


def expect_rolled_back_event(aws: StubbedAws, **detail: Any) -> None:
    """`Release Rolled Back` for RELEASE_ID of web, back on PREVIOUS_AMI from AMI (the
    AMI a later environment then never promotes)."""
    body = {
        "release_id": RELEASE_ID,
        "environment": "sandbox",
        "fleet": "web",
        "to_ami": PREVIOUS_AMI,
        "from_ami": AMI,
        "rolled_back_ami": AMI,
    }
    entry = {
        "Source": "phoenix",
        "DetailType": "Release Rolled Back",
        "Detail": JsonContaining(body | detail),
        "Resources": [],
    }
    aws.events.add_response(
        "put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}, {"Entries": [entry]}
    )


def expect_release_started(
    aws: StubbedAws, event_id: str, reason: str, refused: str | None = None
) -> None:
    """A new release of PREVIOUS_AMI, marked as the rollback of RELEASE_ID, named after
    it (`refused`: the error Step Functions answers with)."""
    wanted = {
        "environment": "sandbox",
        "fleet": "web",
        "ami": PREVIOUS_AMI,
        "trigger": f"rollback of {RELEASE_ID}: {reason}"[:300],
        "event_id": event_id,
        "image": None,
    }
    params = {
        "stateMachineArn": MACHINE,
        "name": f"rollback-{RELEASE_ID}",
        "input": JsonContaining(wanted),
    }
    if refused is not None:
        aws.stepfunctions.add_client_error(
            "start_execution",
            service_error_code=refused,
            http_status_code=400,
            expected_params=params,
        )
        return
    aws.stepfunctions.add_response(
        "start_execution",
        {"executionArn": f"{MACHINE}:x", "startDate": datetime(2026, 11, 25, tzinfo=UTC)},
        params,
    )
