"""The plan's steps and its decisions, against moto's DynamoDB and EventBridge and
botocore's models (Stubber) for Step Functions, CloudWatch and SSM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import release_key
from phoenix.plan.handlers.plan_control import handle as control
from phoenix.plan.handlers.plan_step import MalformedPlanStepError, handle
from phoenix.plan.runtime.ledger import PlanLedger
from phoenix.plan.runtime.settings import PlanSettings
from tests.ledger_table import create_ledger_table

REGION, DR = "us-east-1", "us-west-2"
TABLE = "ledger"
MACHINE = f"arn:aws:states:{REGION}:123456789012:stateMachine:phoenix-prod-release"
SETTINGS = PlanSettings.from_environ(
    {
        "PHOENIX_ENVIRONMENT": "prod",
        "POWERTOOLS_SERVICE_NAME": "phoenix-plan",
        "PHOENIX_TABLE_NAME": TABLE,
        "PHOENIX_RELEASE_STATE_MACHINE_ARN": MACHINE,
        "AWS_REGION": REGION,
    }
)
AMIS = {REGION: "ami-0123456789abcdef0", DR: "ami-0fedcba9876543210"}
LAYOUT = {
    "waves": [
        {"name": "one-box", "region": REGION, "fleets": ["web"], "max_concurrency": 1,
         "bake_minutes": 60, "min_requests": 1000},
        {"name": "dr", "region": DR, "fleets": ["web", "api"], "max_concurrency": 2,
         "bake_minutes": 0, "min_requests": 0},
    ],
    "blocked": [],
}  # fmt: skip
STARTED = "2026-12-02T09:00:00Z"
WAITING = "a3f0c8d2-token"  # the halted run's task token


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    """moto's DynamoDB and EventBridge, started once for the module (clients made once)."""
    with mock_aws():
        yield {
            "dynamodb": boto3.client("dynamodb", region_name=REGION),
            "events": boto3.client("events", region_name=REGION),
        }


@pytest.fixture
def aws(world: dict[str, Any]) -> Iterator[Clients]:
    """A new, empty ledger table for each test."""
    dynamodb = world["dynamodb"]
    create_ledger_table(dynamodb, TABLE)
    made = Clients(REGION)
    made.provide("dynamodb", dynamodb)
    made.provide("events", world["events"])
    yield made
    dynamodb.delete_table(TableName=TABLE)


def _state(**more: Any) -> dict[str, Any]:
    return {
        "environment": "prod",
        "plan": "golden",
        "image": "arn:aws:imagebuilder:us-east-1:123456789012:image/phoenix-prod-golden/1.0.0/1",
        "amis": AMIS,
        "event_id": "e-1",
        "run": {"id": "e-1", "started_at": STARTED},
        "layout": LAYOUT,
        **more,
    }


def _step(action: str, state: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"action": action, "state": state, "entered_at": STARTED, **more}


def _started(aws: Clients) -> dict[str, Any]:
    waves: dict[str, Any] = handle(_step("start", _state()), SETTINGS, aws)
    return waves


def test_start_names_each_release_and_gives_each_region_its_own_ami(aws: Clients) -> None:
    waves = _started(aws)

    assert waves["count"] == 2
    one_box, dr = waves["all"]
    assert one_box["items"] == [
        {"fleet": "web", "region": REGION, "ami": AMIS[REGION], "name": "web-e-1", "local": True}
    ]
    assert [(i["fleet"], i["ami"], i["local"]) for i in dr["items"]] == [
        ("web", AMIS[DR], False),
        ("api", AMIS[DR], False),
    ]
    assert (one_box["bake_seconds"], dr["max_concurrency"]) == (3600, 2)
    run = PlanLedger(aws.dynamodb, TABLE).run_item("golden", "e-1")
    assert (run["status"], run["waves"]) == ("running", ["one-box", "dr"])


def test_an_environment_agnostic_plan_releases_in_the_functions_own_region(
    aws: Clients,
) -> None:
    # CDK writes no `region` for a wave of an environment-agnostic environment
    layout = {"waves": [{k: v for k, v in LAYOUT["waves"][0].items() if k != "region"}]}
    waves = handle(_step("start", _state(layout=layout)), SETTINGS, aws)
    (item,) = waves["all"][0]["items"]
    assert (item["region"], item["ami"], item["local"]) == (REGION, AMIS[REGION], True)


def test_an_image_without_an_ami_in_a_planned_region_is_refused(aws: Clients) -> None:
    with pytest.raises(Exception, match="has no AMI in us-west-2"):
        handle(_step("start", _state(amis={REGION: AMIS[REGION]})), SETTINGS, aws)


def test_a_wave_inside_a_blocked_window_waits_for_its_end(aws: Clients) -> None:
    waves = _started(aws)
    # today and tomorrow blocked (two days, so that midnight passing changes nothing)
    today = datetime.now(UTC).date()
    days = [today.isoformat(), (today + timedelta(days=1)).isoformat()]
    blocked = {"waves": LAYOUT["waves"], "blocked": [{"dates": days}]}
    state = _state(layout=blocked, waves=waves, position={"wave": 0})

    window = handle(_step("window", state), SETTINGS, aws)

    opens = (today + timedelta(days=2)).isoformat()
    assert window == {"blocked": True, "start_at": f"{opens}T00:00:00Z"}
    run = PlanLedger(aws.dynamodb, TABLE).run_item("golden", "e-1")
    assert run["waiting_until"].startswith(opens)


def test_a_wave_outside_every_window_starts_at_once(aws: Clients) -> None:
    waves = _started(aws)
    state = _state(waves=waves, position={"wave": 1})
    window = handle(_step("window", state), SETTINGS, aws)
    assert window["blocked"] is False
    assert PlanLedger(aws.dynamodb, TABLE).run_item("golden", "e-1")["wave"] == 1


def test_a_malformed_step_is_refused_before_any_call(aws: Clients) -> None:
    with pytest.raises(MalformedPlanStepError, match="unknown action"):
        handle({"action": "explode", "state": {}}, SETTINGS, aws)
    with pytest.raises(MalformedPlanStepError, match="malformed plan step input"):
        handle(_step("window", {"plan": "golden"}), SETTINGS, aws)


def _item(fleet: str, wave: int, action: str) -> dict[str, Any]:
    item = {"fleet": fleet, "region": DR, "ami": AMIS[DR], "name": f"{fleet}-e-1", "local": False}
    run = {"plan": "golden", "id": "e-1", "wave": wave}
    return {"action": action, "item": item, "run": run, "request": {}}


def test_once_a_release_of_a_wave_failed_no_other_of_it_starts(aws: Clients) -> None:
    _started(aws)
    assert handle(_item("web", 1, "may_start"), SETTINGS, aws) == {"go": True}

    handle(_item("web", 1, "mark_failed"), SETTINGS, aws)

    assert handle(_item("api", 1, "may_start"), SETTINGS, aws) == {"go": False}
    assert handle(_item("api", 2, "may_start"), SETTINGS, aws) == {"go": True}


def _current(aws: Clients, index: int) -> dict[str, Any]:
    wave: dict[str, Any] = _started(aws)["all"][index]
    return wave


def test_the_outcome_names_the_failed_release_its_reason_and_who_never_started(
    aws: Clients,
) -> None:
    wave = _current(aws, 1)
    aws.dynamodb.put_item(
        TableName=TABLE,
        Item={**release_key("web", "web-e-1"), "reason": {"S": "alarm web-5xx"}},
    )
    dr = boto3.client("stepfunctions", region_name=DR)
    with Stubber(dr) as stub:
        stub.add_response(
            "describe_execution",
            {"executionArn": "x", "stateMachineArn": "y", "status": "ABORTED",
             "startDate": datetime(2026, 12, 2, tzinfo=UTC)},
            {"executionArn": MACHINE.replace(REGION, DR).replace(":stateMachine:", ":execution:")
             + ":web-e-1"},
        )  # fmt: skip
        stub.add_client_error("describe_execution", service_error_code="ExecutionDoesNotExist")
        aws.in_region(DR).provide("stepfunctions", dr)
        outcome = handle(_step("outcome", _state(current={"wave": wave})), SETTINGS, aws)

    # A remote release's reason is in its own region's ledger: its status stands for it.
    assert outcome["released"] is False
    assert outcome["failed"] == [
        {"fleet": "web", "region": DR, "status": "ABORTED", "why": "aborted"}
    ]
    assert outcome["not_started"] == ["api"]
    assert outcome["reason"] == "web in us-west-2: aborted; not started: api"


def test_a_fleet_whose_release_never_started_leaves_the_wave_unreleased(aws: Clients) -> None:
    # Its item failed before the release began (an error in MayStart, say), none failed
    wave = _current(aws, 1)
    dr = boto3.client("stepfunctions", region_name=DR)
    with Stubber(dr) as stub:
        done = {"executionArn": "x", "stateMachineArn": "y", "status": "SUCCEEDED",
                "startDate": datetime(2026, 12, 2, tzinfo=UTC)}  # fmt: skip
        stub.add_response("describe_execution", done)
        stub.add_client_error("describe_execution", service_error_code="ExecutionDoesNotExist")
        aws.in_region(DR).provide("stepfunctions", dr)
        outcome = handle(_step("outcome", _state(current={"wave": wave})), SETTINGS, aws)
    assert (outcome["released"], outcome["reason"]) == (False, "not started: api")


def test_a_bake_without_a_minimum_of_requests_reads_no_metric(aws: Clients) -> None:
    wave = _current(aws, 1)
    counted = handle(_step("requests", _state(current={"wave": wave})), SETTINGS, aws)
    assert counted == {"enough": True, "requests": 0, "give_up": False}


def test_the_bake_counts_the_requests_of_the_waves_load_balancers(aws: Clients) -> None:
    wave = _current(aws, 0)
    listener = (
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123456789abcdef/f1"
    )
    ssm = boto3.client("ssm", region_name=REGION)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    ended = datetime.now(UTC) - timedelta(hours=1)
    with Stubber(ssm) as parameters, Stubber(cloudwatch) as metrics:
        spec = json.dumps({"name": "web", "listener": listener})
        parameters.add_response(
            "get_parameters",
            {"Parameters": [{"Name": "/phoenix-fleets/prod/web", "Type": "String", "Value": spec}]},
            {"Names": ["/phoenix-fleets/prod/web"]},
        )
        query = {
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "RequestCount",
            "Dimensions": [{"Name": "LoadBalancer", "Value": "app/web/0123456789abcdef"}],
        }
        metrics.add_response(
            "get_metric_data",
            {"MetricDataResults": [{"Id": "r0", "Values": [400.0, 350.0]}]},
            {"MetricDataQueries": [{"Id": "r0", "MetricStat": {"Metric": query,
             "Period": ANY, "Stat": "Sum"}}], "StartTime": ANY, "EndTime": ANY},
        )  # fmt: skip
        aws.provide("ssm", ssm)
        aws.provide("cloudwatch", cloudwatch)
        state = _state(current={"wave": wave}, ended={"at": ended.isoformat()})
        counted = handle(_step("requests", state), SETTINGS, aws)

    # 750 requests in the hour since the wave ended, short of 1000: bake on, not give up
    assert counted == {"enough": False, "requests": 750, "give_up": False}


def _halted(aws: Clients) -> None:
    _started(aws)
    PlanLedger(aws.dynamodb, TABLE).halt(
        "golden", "e-1", token=WAITING, facts={"halted_wave": "one-box", "reason": "web failed"}
    )


def _decision(kind: str = "Plan Resume Requested", **detail: Any) -> dict[str, Any]:
    body = {"environment": "prod", "plan": "golden", "run": "e-1",
            "requested_by": "alice", "reason": "the fix is out", **detail}  # fmt: skip
    return {"version": "0", "id": "d-1", "detail-type": kind, "source": "phoenix",
            "account": "123456789012", "time": STARTED, "region": REGION,
            "resources": [], "detail": body}  # fmt: skip


def _stubbed_sfn(aws: Clients) -> Stubber:
    client = boto3.client("stepfunctions", region_name=REGION)
    aws.provide("stepfunctions", client)
    return Stubber(client)


def test_a_resume_request_answers_the_halted_runs_token_and_records_who_and_why(
    aws: Clients,
) -> None:
    _halted(aws)
    with _stubbed_sfn(aws) as stub:
        output = {"decision": "resume", "by": "alice", "reason": "the fix is out",
                  "wave": "one-box"}  # fmt: skip
        stub.add_response(
            "send_task_success", {}, {"taskToken": WAITING, "output": json.dumps(output)}
        )
        result = control(_decision(), SETTINGS, aws)
        stub.assert_no_pending_responses()

    assert result["refused"] is None
    run = PlanLedger(aws.dynamodb, TABLE).run_item("golden", "e-1")
    assert run["status"] == "running"
    assert "task_token" not in run
    (decision,) = run["decisions"]
    assert (decision["decision"], decision["by"], decision["wave"]) == (
        "resume",
        "alice",
        "one-box",
    )


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_decision(environment="staging"), "for environment staging, not prod"),
        (_decision(run="e-2"), "plan golden has no run e-2"),
        (_decision(wave="dr"), "halted at wave one-box, not dr"),
        (_decision("Plan Resumed"), "Input should be"),
        ({"source": "phoenix", "detail": "nope"}, "validation error"),
    ],
)
def test_a_request_that_does_not_fit_the_halted_run_changes_nothing(
    aws: Clients, event: dict[str, Any], reason: str
) -> None:
    _halted(aws)
    with _stubbed_sfn(aws):  # no call expected: any would fail
        result = control(event, SETTINGS, aws)
    assert reason in str(result["refused"])
    assert PlanLedger(aws.dynamodb, TABLE).run_item("golden", "e-1")["status"] == "halted"


def test_a_second_request_for_a_decided_halt_changes_nothing(aws: Clients) -> None:
    _halted(aws)
    with _stubbed_sfn(aws) as stub:
        stub.add_client_error("send_task_success", service_error_code="TaskTimedOut")
        result = control(_decision("Plan Abandon Requested"), SETTINGS, aws)
    assert "no longer waits for a decision (TaskTimedOut)" in str(result["refused"])
    run = PlanLedger(aws.dynamodb, TABLE).run_item("golden", "e-1")
    assert (run["status"], run["decisions"]) == ("halted", [])
