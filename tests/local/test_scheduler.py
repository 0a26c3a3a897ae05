"""EventBridge Scheduler in the embedded AWS (local/scheduler.py): a schedule runs its
Lambda target only with a role that trusts scheduler.amazonaws.com and may invoke the
function ("Set up the execution role", EventBridge Scheduler user guide)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import install_extensions, scheduler

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:phoenix-sandbox-drift"
SCHEDULE = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/drift"


@pytest.fixture
def iam() -> Iterator[Any]:
    with mock_aws():
        install_extensions(None)
        yield boto3.client("iam", region_name="us-east-1")


def _role(iam: Any, *, service: str, account: str, invoke: str | None) -> str:
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}  # fmt: skip
    arn = str(
        iam.create_role(RoleName="run", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    )
    if invoke:
        allow = {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": invoke}
        policy = {"Version": "2012-10-17", "Statement": [allow]}
        iam.put_role_policy(RoleName="run", PolicyName="invoke", PolicyDocument=json.dumps(policy))
    return arn


def _why_not(role: str) -> str:
    return scheduler._why_not({"Arn": FUNCTION, "RoleArn": role}, SCHEDULE)


def test_a_role_scheduler_may_assume_and_that_may_invoke_runs_the_target(iam: Any) -> None:
    role = _role(iam, service="scheduler.amazonaws.com", account="123456789012", invoke=FUNCTION)
    assert _why_not(role) == ""


@pytest.mark.parametrize(
    ("service", "account", "invoke", "why"),
    [
        ("events.amazonaws.com", "123456789012", FUNCTION, "does not trust"),
        ("scheduler.amazonaws.com", "999999999999", FUNCTION, "does not trust"),
        ("scheduler.amazonaws.com", "123456789012", None, "may not lambda:InvokeFunction"),
        ("scheduler.amazonaws.com", "123456789012", f"{FUNCTION}-other", "may not lambda:Invoke"),
    ],
)
def test_a_role_that_does_not_trust_scheduler_or_may_not_invoke_runs_nothing(
    iam: Any, service: str, account: str, invoke: str | None, why: str
) -> None:
    role = _role(iam, service=service, account=account, invoke=invoke)
    assert why in _why_not(role)


def test_only_rate_expressions_run_and_their_period_is_in_seconds() -> None:
    assert scheduler.period("rate(1 hour)") == 3600
    assert scheduler.period("rate(30 minutes)") == 1800
    assert scheduler.period("rate(2 days)") == 172800
    assert scheduler.period("cron(0 3 * * ? *)") is None
