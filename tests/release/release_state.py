"""What the release step tests share: valid step inputs for each strategy, and AWS clients
wrapped in botocore's Stubber, with the order of every call across services recorded.

The Stubbers start with nothing queued: a call nobody expected raises
UnStubbedResponseError, and `StubbedAws.verify` fails when an expected call never came.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta
from typing import Any, TypedDict

import boto3
from aws_lambda_powertools import Metrics
from botocore.stub import ANY, Stubber

from phoenix.kernel import attributes, clock
from phoenix.kernel.clients import Clients, Service
from phoenix.kernel.settings import ReleaseSettings

SETTINGS = ReleaseSettings(environment="sandbox", service_name="t", table_name="ledger")
TABLE = "ledger"
ELB = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
LISTENER = f"{ELB}:listener/app/phoenix-sandbox-web/50dc6c495c0c9188/f2f7dc8efc522ab2"
TARGET_GROUPS = {
    "blue": f"{ELB}:targetgroup/web-blue/73e2d6bc24d8a067",
    "green": f"{ELB}:targetgroup/web-green/4f1e2d3c4b5a6978",
}
TEMPLATES = {"blue": "lt-0123456789abcdef0", "green": "lt-0fedcba9876543210"}
GROUPS = {"blue": "phoenix-sandbox-web-blue", "green": "phoenix-sandbox-web-green"}
ALARMS = ["phoenix-sandbox-web-5xx", "phoenix-sandbox-web-p99"]
AMI = "ami-0aaaaaaaaaaaaaaa1"
PREVIOUS_AMI = "ami-0bbbbbbbbbbbbbbb2"
RELEASE_ID = "web-3f9c2a"
STARTED_AT = datetime.fromisoformat("2026-11-25T09:00:00+00:00")
POINTER = "/phoenix/sandbox/web/ami"
SOURCE_VERSION = 7
TEMPLATE_VERSION = 9
VERSION = 8
CAPACITY = {"min": 2, "max": 6, "desired": 3}
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAc+token"  # noqa: S105 - a task token, no secret


class Credentials(TypedDict):
    """boto3.client's keyword arguments for fake credentials (Stubber and moto)."""

    aws_access_key_id: str
    aws_secret_access_key: str


CREDENTIALS: Credentials = {"aws_access_key_id": "x", "aws_secret_access_key": "x"}


def parameter(slot: str, setting: str) -> str:
    return f"/phoenix/sandbox/web/{slot}/{setting}"


def expect_registered(aws: StubbedAws, spec: dict[str, Any] | None) -> None:
    """The registry's read of web (GetParameters); None: the registry holds no web."""
    name = "/phoenix-fleets/sandbox/web"
    found = {"Parameters": [{"Name": name, "Type": "String", "Value": json.dumps(spec)}]}
    missing = {"Parameters": [], "InvalidParameters": [name]}
    aws.ssm.add_response("get_parameters", found if spec else missing, {"Names": [name]})


def other(slot: str) -> str:
    return "green" if slot == "blue" else "blue"


# --- step inputs ------------------------------------------------------------------------


def fleet_spec(strategy: str = "canary", **changes: Any) -> dict[str, Any]:
    """A fleet as the registry describes it (FleetSpec)."""
    slots = ("blue",) if strategy == "rolling" else ("blue", "green")
    spec: dict[str, Any] = {
        "name": "web",
        "strategy": strategy,
        "image_pipeline": "golden",
        "stack": "phoenix-sandbox",
        "architecture": "arm64",
        "listener": LISTENER,
        "slots": {
            slot: {
                "group": GROUPS[slot],
                "target_group": TARGET_GROUPS[slot],
                "launch_template": TEMPLATES[slot],
            }
            for slot in slots
        },
        "alarms": ALARMS,
        "min_healthy_percentage": 100,
        "max_healthy_percentage": 200,
        "checkpoint_percentages": [50] if strategy == "rolling" else [],
        "checkpoint_delay_seconds": 300 if strategy == "rolling" else 0,
        "bake_seconds": 600 if strategy == "rolling" else 300,
        "steps": [5, 25, 50, 100] if strategy == "canary" else [100],
        "rollback_window_seconds": 0 if strategy == "rolling" else 1800,
        "warmup_seconds": 60,
        "warmup_checks": 5,
    }
    return spec | changes


def plan(strategy: str = "canary", active: str = "blue", **changes: Any) -> dict[str, Any]:
    """What preflight found for a fleet serving `PREVIOUS_AMI` from slot `active`."""
    target = active if strategy == "rolling" else other(active)
    steps = [5, 25, 50, 100] if strategy == "canary" else [100]
    found: dict[str, Any] = {
        "from_ami": PREVIOUS_AMI,
        "active_slot": active,
        "target_slot": target,
        "active_target_group": TARGET_GROUPS[active],
        "target_target_group": TARGET_GROUPS[target],
        "source_version": SOURCE_VERSION,
        "template_version": SOURCE_VERSION,
        "capacity": CAPACITY,
        "target_running": 0,
        "steps": [{"target": p, "active": 100 - p, "last": p == 100} for p in steps],
        "refresh_wait_seconds": 900,
    }
    return found | changes


def release_state(
    strategy: str = "canary", *, planned: bool = True, prepared: bool = True, **more: Any
) -> dict[str, Any]:
    """The execution's state: the trigger's request, then what earlier steps added."""
    state: dict[str, Any] = {
        "environment": "sandbox",
        "fleet": "web",
        "ami": AMI,
        "trigger": "image-available",
        "event_id": "8c9d0e1f-event",
        "image": "arn:aws:imagebuilder:us-east-1:123456789012:image/phoenix-sandbox-golden/1.0.0/1",
        "release": {"id": RELEASE_ID, "started_at": STARTED_AT.isoformat()},
        "fleet_spec": fleet_spec(strategy),
    }
    if planned:
        state["plan"] = plan(strategy)
    if prepared:
        state["prepared"] = {"version": VERSION}
    return state | more


def step_input(
    state: dict[str, Any], action: str = "run", token: str | None = None
) -> dict[str, Any]:
    """What the state machine sends a Lambda step."""
    event: dict[str, Any] = {
        "action": action,
        "state": state,
        "entered_at": "2026-11-25T09:05:00.123Z",
    }
    if token is not None:
        event["task_token"] = token
    return event


def lambda_error(error: str, message: str) -> dict[str, str]:
    """What a Catch puts at `$.error` when a Lambda step raised."""
    cause = {"errorType": error, "errorMessage": message, "stackTrace": []}
    return {"Error": error, "Cause": json.dumps(cause)}


# --- stubbed AWS --------------------------------------------------------------------------


class JsonContaining:
    """Matches a JSON document (a string) holding at least these keys and values."""

    def __init__(self, expected: dict[str, Any]) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return False
        found = json.loads(other)
        return all(found.get(key) == value for key, value in self.expected.items())

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<JSON with {self.expected!r}>"


class IsoAfter:
    """Matches a DynamoDB time string `delta` from now (give or take a minute)."""

    def __init__(self, delta: timedelta) -> None:
        self.delta = delta

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict) or "S" not in other:
            return False
        moment = datetime.fromisoformat(other["S"])
        return abs(moment - (clock.now() + self.delta)) < timedelta(minutes=1)

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<ISO time now + {self.delta}>"


class StubbedAws:
    """`Clients` whose boto3 clients are Stubber-wrapped; `calls` lists every call made,
    as `service.Operation`, in order across services."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._stubs: dict[str, Stubber] = {}
        self.clients = Clients("us-east-1", factory=lambda service: self.stub(service).client)

    def stub(self, service: Service) -> Stubber:
        if service not in self._stubs:
            client = boto3.client(service, region_name="us-east-1", **CREDENTIALS)
            # Registered before the Stubber's own handler, which answers the call.
            client.meta.events.register("before-call.*.*", functools.partial(self._called, service))
            stubber = Stubber(client)
            stubber.activate()
            self._stubs[service] = stubber
        return self._stubs[service]

    def _called(self, service: str, model: Any, **_: Any) -> None:
        self.calls.append(f"{service}.{model.name}")

    def verify(self) -> None:
        """Every queued response was asked for; the handlers' metrics are dropped."""
        Metrics().clear_metrics()
        for stubber in self._stubs.values():
            stubber.assert_no_pending_responses()
            stubber.deactivate()

    @property
    def dynamodb(self) -> Stubber:
        return self.stub("dynamodb")

    @property
    def events(self) -> Stubber:
        return self.stub("events")

    @property
    def ssm(self) -> Stubber:
        return self.stub("ssm")

    @property
    def ec2(self) -> Stubber:
        return self.stub("ec2")

    @property
    def autoscaling(self) -> Stubber:
        return self.stub("autoscaling")

    @property
    def cloudwatch(self) -> Stubber:
        return self.stub("cloudwatch")

    @property
    def elbv2(self) -> Stubber:
        return self.stub("elbv2")

    @property
    def stepfunctions(self) -> Stubber:
        return self.stub("stepfunctions")


def fleet_key() -> dict[str, Any]:
    return {"pk": {"S": "FLEET#web"}, "sk": {"S": "FLEET"}}


def release_key() -> dict[str, Any]:
    return {"pk": {"S": "FLEET#web"}, "sk": {"S": f"RELEASE#{RELEASE_ID}"}}


def conditional_check_failed(stubber: Stubber, operation: str = "update_item") -> None:
    stubber.add_client_error(
        operation, service_error_code="ConditionalCheckFailedException", http_status_code=400
    )


def expect_event(aws: StubbedAws, detail_type: str, **detail: Any) -> None:
    """One phoenix event of `detail_type` for this release, with at least `detail`."""
    aws.events.add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]},
        {
            "Entries": [
                {
                    "Source": "phoenix",
                    "DetailType": detail_type,
                    "Detail": JsonContaining(
                        {"release_id": RELEASE_ID, "fleet": "web", "to_ami": AMI, **detail}
                    ),
                    "Resources": [],
                }
            ]
        },
    )


def expect_step(aws: StubbedAws, step: str, **detail: Any) -> None:
    """The step appended to the release's ledger item, then `Release Step Completed`
    (a detail given as ANY matches any value)."""
    entry = attributes.typed({"step": step, **{k: v for k, v in detail.items() if v is not ANY}})
    entry["M"] = {**entry["M"], "at": ANY, **{k: ANY for k, v in detail.items() if v is ANY}}
    aws.dynamodb.add_response(
        "update_item",
        {"Attributes": {"last_step_at": {"S": "2026-11-25T09:04:00.000000Z"}}},
        {
            "TableName": TABLE,
            "Key": release_key(),
            "UpdateExpression": ANY,
            "ExpressionAttributeValues": {
                ":step": {"L": [entry]},
                ":none": {"L": []},
                ":at": ANY,
            },
            "ReturnValues": "UPDATED_OLD",
        },
    )
    expect_event(aws, "Release Step Completed", step=step, **detail)


def expect_approval_kept(aws: StubbedAws, approval: Any) -> None:
    """The held step's `approval` (typed) set on the fleet item while the release holds
    the lock (phoenix/kernel/approval.py)."""
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": "SET approval = :approval",
            "ConditionExpression": "lock_owner = :release",
            "ExpressionAttributeValues": {":approval": approval, ":release": {"S": RELEASE_ID}},
        },
    )


def expect_unlock(aws: StubbedAws, release: str = RELEASE_ID) -> None:
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": "REMOVE lock_owner, lock_expires, waiting_token, waiting_group, "
            "approval",
            "ConditionExpression": "lock_owner = :release",
            "ExpressionAttributeValues": {":release": {"S": release}},
        },
    )


def expect_put_parameter(aws: StubbedAws, name: str, value: str) -> None:
    aws.ssm.add_response(
        "put_parameter",
        {"Version": 2},
        {"Name": name, "Value": value, "Type": "String", "Overwrite": True},
    )


def expect_token_stored(aws: StubbedAws, group: str = GROUPS["blue"]) -> None:
    """The release stores the task token for the refresh event receiver (`group`)."""
    aws.dynamodb.add_response(
        "update_item",
        {},
        {
            "TableName": TABLE,
            "Key": fleet_key(),
            "UpdateExpression": "SET waiting_token = :waiting_token, "
            "waiting_group = :waiting_group",
            "ConditionExpression": "lock_owner = :release",
            "ExpressionAttributeValues": {
                ":waiting_token": {"S": TOKEN},
                ":waiting_group": {"S": group},
                ":release": {"S": RELEASE_ID},
            },
        },
    )
