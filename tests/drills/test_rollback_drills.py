"""The rollback drills as synthesized (phoenix/drills/rollback_drills.py): the schedule and
its input, off in the sandbox; the alarm on the metric the function publishes; the
function's grants, exactly the calls it makes (the embedded AWS's IAM checks each call of
tests/integration/test_drills.py against them)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from phoenix.drills.handlers.drill import FAILED_METRIC
from phoenix.drills.rollback_drills import (
    DRILL_DESCRIBES,
    DRILL_FLEET_CALLS,
    DRILL_LEDGER_CALLS,
    DRILL_TERMINATE,
    EBS_KEY_CALLS,
    SERVICE,
)
from phoenix.release.spec import REGISTRY_LIST
from tests.conftest import SynthesizedApp
from tests.iam import actions_of

HANDLER = "phoenix.drills.handlers.drill.lambda_handler"


def _schedule(template: Template) -> dict[str, Any]:
    (schedule,) = [
        s["Properties"]
        for s in template.find_resources("AWS::Scheduler::Schedule").values()
        if "rollback drills" in s["Properties"].get("Description", "")
    ]
    return dict(schedule)


def test_production_drills_every_five_minutes_and_the_sandbox_not_at_all(
    synthesized: SynthesizedApp,
) -> None:
    production = _schedule(Template.from_json(synthesized.template("phoenix-production")))
    assert production["ScheduleExpression"] == "rate(5 minutes)"
    assert production["State"] == "ENABLED"
    assert json.loads(production["Target"]["Input"]) == {
        "drill": "run",
        "environment": "production",
    }
    sandbox = _schedule(Template.from_json(synthesized.template("phoenix-sandbox")))
    assert sandbox["State"] == "DISABLED"


def test_the_alarm_watches_the_failed_drills_the_function_counts(
    synthesized: SynthesizedApp,
) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    (alarm,) = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == FAILED_METRIC
    ]
    assert alarm["AlarmName"] == "phoenix-production--rollback-drills-failed"
    assert alarm["Namespace"] == "Phoenix/production"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert len(alarm["AlarmActions"]) == 1


def test_the_function_is_granted_exactly_the_calls_it_makes(synthesized: SynthesizedApp) -> None:
    template = Template.from_json(synthesized.template("phoenix-production"))
    (function,) = [
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == HANDLER
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    granted = {
        action
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in actions_of(statement)
    }
    assert granted == {
        *DRILL_LEDGER_CALLS,
        *DRILL_FLEET_CALLS,
        *DRILL_DESCRIBES,
        DRILL_TERMINATE,
        *EBS_KEY_CALLS,  # (and the ledger's key: Decrypt, Encrypt, GenerateDataKey)
        "kms:Encrypt",
        "kms:GenerateDataKey",
        REGISTRY_LIST,
        "events:PutEvents",
        "sqs:SendMessage",  # its failed asynchronous invocations' destination
        # every phoenix function's own log stream and traces
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    }
