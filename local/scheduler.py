"""EventBridge Scheduler in the embedded AWS: schedules deployed by CloudFormation, run on
the simulated clock.

moto 5.2 keeps Scheduler's API (CreateSchedule, GetSchedule, ...), but its CloudFormation
skips `AWS::Scheduler::Schedule` and nothing ever runs a schedule. Here:
- `AWS::Scheduler::Schedule` is created with CreateSchedule, its properties as the
  CloudFormation resource reference gives them, and deleted with DeleteSchedule;
- an ENABLED schedule with a rate expression (`rate(value unit)`, "Schedule types on
  EventBridge Scheduler") runs once each period of simulated time after its creation:
  Scheduler assumes the target's execution role, which must trust
  `scheduler.amazonaws.com` (its conditions on `aws:SourceAccount` and `aws:SourceArn`
  evaluated) and allow `lambda:InvokeFunction` on the function ("Set up the execution
  role"), and invokes a Lambda target asynchronously with the target's Input ("Use
  templated targets": Lambda Invoke). A run the role does not allow invokes nothing and
  is recorded in `refused`.
Not emulated: cron and at expressions (created, never run), flexible time windows (a run
is at the start of its window), the target's retry policy and dead-letter queue, time
zones, start and end dates, schedule groups other than `default`, other target types.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from moto.cloudformation.models import CloudFormationModel
from moto.iam.models import iam_backends

from local import clock
from local.cloudformation import aws_client
from local.cloudformation_resources import ApiBacked
from local.iam import ACCOUNT, role_policies
from local.iam_policy import Decision, Request, evaluate

logger = logging.getLogger(__name__)
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
PRINCIPAL = "scheduler.amazonaws.com"


@dataclass(frozen=True)
class Refusal:
    schedule: str
    reason: str


refused: list[Refusal] = []
runs: list[str] = []  # the schedules run, in order (by ARN)


def period(expression: str) -> float | None:
    """A rate expression's period in seconds; None for any other expression."""
    match = RATE.match(expression)
    if not match:
        return None
    return int(match.group(1)) * SECONDS[match.group(2).rstrip("s")]


def _trusts_scheduler(role: Any, schedule_arn: str) -> bool:
    """The role's trust policy lets Scheduler assume it for this schedule."""
    document = role.assume_role_policy_document
    policy = json.loads(document) if isinstance(document, str) else document
    statements = policy.get("Statement", [])
    context = {"aws:SourceAccount": [ACCOUNT], "aws:SourceArn": [schedule_arn]}
    for statement in [statements] if isinstance(statements, dict) else statements:
        services = statement.get("Principal", {}).get("Service", [])
        if PRINCIPAL not in ([services] if isinstance(services, str) else services):
            continue
        grant = {
            key: statement[key] for key in ("Effect", "Action", "Condition") if key in statement
        }
        request = Request("sts:AssumeRole", "*", context)
        if evaluate([{"Statement": [grant | {"Resource": "*"}]}], request) is Decision.ALLOWED:
            return True
    return False


def _why_not(target: dict[str, Any], schedule_arn: str) -> str:
    """Why Scheduler may not invoke the target with its role ("" when it may)."""
    role_arn = str(target.get("RoleArn", ""))
    try:
        role = iam_backends[ACCOUNT]["global"].get_role_by_arn(role_arn)
    except Exception:
        return f"no role {role_arn}"
    if not _trusts_scheduler(role, schedule_arn):
        return f"{role_arn} does not trust {PRINCIPAL} for {schedule_arn}"
    request = Request("lambda:InvokeFunction", str(target["Arn"]))
    decision = evaluate(role_policies(role_arn), request)
    if decision is not Decision.ALLOWED:
        return f"{role_arn} may not lambda:InvokeFunction on {target['Arn']}: {decision.value}"
    return ""


def _run_every(name: str, region: str, seconds: float) -> None:
    def run() -> None:
        scheduler = aws_client("scheduler", region)
        try:
            schedule = scheduler.get_schedule(Name=name)
        except scheduler.exceptions.ResourceNotFoundException:
            return  # deleted: it runs no more
        clock.at(seconds, run)
        target = schedule["Target"]
        if schedule.get("State", "ENABLED") != "ENABLED" or ":lambda:" not in target["Arn"]:
            return
        why = _why_not(target, schedule["Arn"])
        if why:
            logger.warning("schedule %s not run: %s", name, why)
            refused.append(Refusal(schedule["Arn"], why))
            return
        runs.append(schedule["Arn"])
        aws_client("lambda", region).invoke(
            FunctionName=target["Arn"],
            InvocationType="Event",
            Payload=str(target.get("Input", "{}")).encode(),
        )

    clock.at(seconds, run)


class ScheduleModel(ApiBacked, CloudFormationModel):
    """AWS::Scheduler::Schedule, created with CreateSchedule and run on the clock."""

    TYPE = "AWS::Scheduler::Schedule"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = frozenset({"Arn"})

    @classmethod
    def apply(
        cls,
        properties: dict[str, Any],
        name: str,
        account: str,  # noqa: ARG003 - the one account of the embedded AWS
        region: str,
    ) -> tuple[str, dict[str, str]]:
        properties.setdefault("Name", name)
        window = dict(properties["FlexibleTimeWindow"])
        if "MaximumWindowInMinutes" in window:
            window["MaximumWindowInMinutes"] = int(window["MaximumWindowInMinutes"])
        target = dict(properties["Target"])
        if "RetryPolicy" in target:
            target["RetryPolicy"] = {k: int(v) for k, v in target["RetryPolicy"].items()}
        request = {
            key: properties[key]
            for key in ("Name", "ScheduleExpression", "Description", "State")
            if key in properties
        }
        scheduler = aws_client("scheduler", region)
        arn = scheduler.create_schedule(**request, FlexibleTimeWindow=window, Target=target)[
            "ScheduleArn"
        ]
        seconds = period(str(properties["ScheduleExpression"]))
        if seconds:
            _run_every(str(properties["Name"]), region, seconds)
        return str(properties["Name"]), {"Arn": str(arn)}

    @classmethod
    def remove(cls, physical_id: str, region: str) -> None:
        aws_client("scheduler", region).delete_schedule(Name=physical_id)


@functools.cache
def install() -> None:
    """The model registers by subclassing (before CloudFormation's caches are cleared)."""
