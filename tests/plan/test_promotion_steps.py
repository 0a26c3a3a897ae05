"""A promoted plan run's steps: the approval it waits for, the rollbacks of earlier
environments that refuse an AMI, the grant that lets this account's Auto Scaling use the
earlier account's key, and the keys a succeeded plan names. Against moto's DynamoDB,
EventBridge, SQS (to read the events sent), KMS and SSM, and botocore's models (Stubber)
for Step Functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from phoenix.kernel.clients import Clients
from phoenix.plan.handlers.plan_control import handle as control
from phoenix.plan.handlers.plan_step import handle
from phoenix.plan.runtime.ledger import PlanLedger
from phoenix.plan.runtime.settings import PlanSettings
from phoenix.platform.encryption import autoscaling_role
from tests.ledger_table import create_ledger_table

REGION = "us-east-1"
TABLE = "ledger"
HERE, EARLIER = "444455556666", "111122223333"
ROLE = autoscaling_role(HERE)
SETTINGS = PlanSettings.from_environ(
    {
        "PHOENIX_ENVIRONMENT": "production",
        "POWERTOOLS_SERVICE_NAME": "phoenix-plan",
        "PHOENIX_TABLE_NAME": TABLE,
        "PHOENIX_RELEASE_STATE_MACHINE_ARN": f"arn:aws:states:{REGION}:{HERE}:stateMachine:r",
        "PHOENIX_EARLIER": json.dumps(["staging", "sandbox"]),
        "PHOENIX_AUTOSCALING_ROLE_ARN": ROLE,
        "AWS_REGION": REGION,
    }
)
AMI = "ami-0123456789abcdef0"
LAYOUT = {
    "waves": [{"name": "all", "region": REGION, "fleets": ["web"], "max_concurrency": 1,
               "bake_minutes": 0, "min_requests": 0}],
    "blocked": [],
}  # fmt: skip
STARTED = "2026-12-02T09:00:00Z"
TOKEN = "approval-token"  # noqa: S105 - a task token, not a password


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        events.put_rule(Name="all", EventPattern=json.dumps({"source": ["phoenix"]}))
        events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}])
        yield {
            "dynamodb": boto3.client("dynamodb", region_name=REGION),
            "events": events,
            "sqs": sqs,
            "queue": queue,
            "kms": boto3.client("kms", region_name=REGION),
            "ssm": boto3.client("ssm", region_name=REGION),
        }


@pytest.fixture
def aws(world: dict[str, Any]) -> Iterator[Clients]:
    dynamodb = world["dynamodb"]
    create_ledger_table(dynamodb, TABLE)
    made = Clients(REGION)
    for service in ("dynamodb", "events", "kms", "ssm"):
        made.provide(service, world[service])
    yield made
    dynamodb.delete_table(TableName=TABLE)
    _sent(world)  # the next test sees only its own events


def _sent(world: dict[str, Any]) -> list[dict[str, Any]]:
    """The events sent since the last call (read and deleted)."""
    sqs, queue = world["sqs"], world["queue"]
    sent: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            sent.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return sent


def _state(**more: Any) -> dict[str, Any]:
    return {
        "environment": "production",
        "plan": "golden",
        "image": f"arn:aws:imagebuilder:{REGION}:{EARLIER}:image/phoenix-staging-golden/1.0.0/1",
        "amis": {REGION: AMI},
        "event_id": "p-1",
        "trigger": "promoted from staging (plan run s-1)",
        "promoted_from": "staging",
        "run": {"id": "p-1", "started_at": STARTED},
        "layout": LAYOUT,
        **more,
    }


def _step(action: str, state: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"action": action, "state": state, "entered_at": STARTED, **more}


def _rolled_back(environment: str = "staging", ami: str = AMI) -> dict[str, Any]:
    body = {"release_id": "web-e-7", "environment": environment, "fleet": "web",
            "strategy": "blue_green", "to_ami": "ami-0aaaaaaaaaaaaaaaa", "from_ami": ami,
            "rolled_back_ami": ami, "reason": "alarm web-5xx in ALARM"}  # fmt: skip
    return {"version": "0", "id": "r-1", "detail-type": "Release Rolled Back",
            "source": "phoenix", "account": EARLIER, "time": STARTED, "region": REGION,
            "resources": [], "detail": body}  # fmt: skip


def _decision(kind: str, **detail: Any) -> dict[str, Any]:
    body = {"environment": "production", "plan": "golden", "run": "p-1",
            "requested_by": "alice", "reason": "staging looked good", **detail}  # fmt: skip
    return {"version": "0", "id": "d-1", "detail-type": kind, "source": "phoenix",
            "account": HERE, "time": STARTED, "region": REGION, "resources": [],
            "detail": body}  # fmt: skip


def _stubbed_sfn(aws: Clients) -> Stubber:
    client = boto3.client("stepfunctions", region_name=REGION)
    aws.provide("stepfunctions", client)
    return Stubber(client)


def _awaiting(aws: Clients) -> None:
    state = _state()
    waves = handle(_step("start", state), SETTINGS, aws)
    handle(_step("approval", {**state, "waves": waves}, task_token=TOKEN), SETTINGS, aws)


def test_a_promoted_image_awaits_approval_and_says_so(aws: Clients, world: dict[str, Any]) -> None:
    _awaiting(aws)

    run = PlanLedger(aws.dynamodb, TABLE).run_item("golden", "p-1")
    assert (run["status"], run["task_token"], run["promoted_from"]) == (
        "awaiting approval",
        TOKEN,
        "staging",
    )
    asked = [e for e in _sent(world) if e["detail-type"] == "Promotion Approval Requested"]
    assert [e["detail"]["run"] for e in asked] == ["p-1"]
    assert asked[0]["detail"]["amis"] == {REGION: AMI}


@pytest.mark.parametrize(
    ("kind", "decided"), [("Promotion Approved", "running"), ("Promotion Rejected", "rejected")]
)
def test_an_approval_decision_answers_the_token_and_records_who_and_why(
    aws: Clients, kind: str, decided: str
) -> None:
    _awaiting(aws)
    verdict = "approve" if kind == "Promotion Approved" else "reject"
    with _stubbed_sfn(aws) as stub:
        output = {"decision": verdict, "by": "alice", "reason": "staging looked good",
                  "wave": None}  # fmt: skip
        stub.add_response(
            "send_task_success", {}, {"taskToken": TOKEN, "output": json.dumps(output)}
        )
        result = control(_decision(kind), SETTINGS, aws)
        stub.assert_no_pending_responses()

    assert result["refused"] is None
    run = PlanLedger(aws.dynamodb, TABLE).run_item("golden", "p-1")
    assert run["status"] == decided
    assert [(d["decision"], d["by"]) for d in run["decisions"]] == [(verdict, "alice")]


def test_a_resume_request_does_not_answer_an_approval(aws: Clients) -> None:
    _awaiting(aws)
    with _stubbed_sfn(aws):  # no call expected: any would fail
        result = control(_decision("Plan Resume Requested"), SETTINGS, aws)
    assert "is awaiting approval, not halted" in str(result["refused"])


def test_an_approval_of_a_run_that_does_not_wait_for_one_changes_nothing(aws: Clients) -> None:
    handle(_step("start", _state()), SETTINGS, aws)
    with _stubbed_sfn(aws):
        result = control(_decision("Promotion Approved"), SETTINGS, aws)
    assert "is running, not awaiting approval" in str(result["refused"])


def test_an_ami_rolled_back_in_an_earlier_environment_is_refused_with_the_reason(
    aws: Clients,
) -> None:
    recorded = control(_rolled_back("sandbox"), SETTINGS, aws)
    assert recorded["recorded"]["fleet"] == "web"

    with pytest.raises(Exception, match=r"rolled back in sandbox \(fleet web.*alarm web-5xx"):
        handle(_step("start", _state()), SETTINGS, aws)
    with pytest.raises(Exception, match="rolled back in sandbox"):
        handle(_step("promotable", _state()), SETTINGS, aws)


def test_a_rollback_of_an_environment_not_before_this_one_is_not_recorded(
    aws: Clients,
) -> None:
    result = control(_rolled_back("production"), SETTINGS, aws)
    assert "not before this one" in str(result["refused"])
    same_account = SETTINGS.model_copy(update={"autoscaling_role_arn": ""})
    assert handle(_step("promotable", _state()), same_account, aws) == {
        "promotable": True,
        "grants": {},
    }


def test_an_image_from_another_account_gets_auto_scaling_a_grant_on_its_key(
    aws: Clients,
) -> None:
    key = aws.kms.create_key(Description="the earlier environment's key")["KeyMetadata"]["Arn"]
    state = _state(keys={REGION: key})
    waves = handle(_step("start", state), SETTINGS, aws)

    promotable = handle(_step("promotable", {**state, "waves": waves}), SETTINGS, aws)

    (grant,) = aws.kms.list_grants(KeyId=key)["Grants"]
    assert promotable["grants"] == {REGION: grant["GrantId"]}
    assert grant["GranteePrincipal"] == ROLE
    assert {"Decrypt", "ReEncryptFrom", "CreateGrant"} <= set(grant["Operations"])


def test_an_image_from_another_account_without_its_key_is_refused(aws: Clients) -> None:
    state = _state()
    waves = handle(_step("start", state), SETTINGS, aws)
    with pytest.raises(Exception, match="named no key for us-east-1"):
        handle(_step("promotable", {**state, "waves": waves}), SETTINGS, aws)


def test_a_succeeded_plan_names_the_key_of_each_region_for_a_later_account(
    aws: Clients, world: dict[str, Any]
) -> None:
    key = f"arn:aws:kms:{REGION}:{EARLIER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    aws.ssm.put_parameter(Name="/phoenix-keys/staging", Value=key, Type="String")
    settings = SETTINGS.model_copy(
        update={"environment": "staging", "key_parameter": "/phoenix-keys/staging"}
    )
    state = _state(environment="staging", promoted_from=None)
    handle(_step("start", state), settings, aws)

    handle(_step("succeeded", state), settings, aws)

    (succeeded,) = [e for e in _sent(world) if e["detail-type"] == "Plan Succeeded"]
    detail = succeeded["detail"]
    assert (detail["image"], detail["amis"], detail["keys"]) == (
        state["image"],
        {REGION: AMI},
        {REGION: key},
    )
