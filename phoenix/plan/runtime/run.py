"""The steps of a plan execution (docs/adr/0011-release-plans.md).

- `start`: each wave's items (fleet, region, that region's AMI, the release's execution
  name), and the run's ledger item.
- `window`: the next moment no blocked window applies (now, or later: the state machine
  waits for it); the wave starts.
- `requests`: after the bake, whether the wave's fleets served the requests the bake
  needs (RequestCount of their load balancers since the wave ended).
- `halt`: which fleets failed and why; the run waits on its task token for a decision.
- `finish`: the run's outcome.
- (a promoted image's `approval` and `promotable`: promotion.py)
- `start_release` / `check_release`: a release in another region (Step Functions starts
  nested executions in its own region only), started and polled with that region's client.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from phoenix.kernel import clock
from phoenix.kernel.attributes import plain
from phoenix.kernel.clients import Clients
from phoenix.kernel.events import EventNotAcceptedError, put
from phoenix.kernel.ledger import iso, release_key
from phoenix.kernel.metrics import NAMESPACE, REQUESTS
from phoenix.kernel.names import execution_name
from phoenix.kernel.registry import read_fleets
from phoenix.plan.runtime.ledger import PlanLedger
from phoenix.plan.runtime.models import (
    Item,
    ItemStep,
    PlanState,
    PlanStep,
    Wave,
)
from phoenix.plan.runtime.settings import PlanSettings
from phoenix.plan.runtime.windows import next_start

# A bake short of its requests is checked again until this long after it ended; then
# the plan halts (too little traffic to judge the wave by).
logger = Logger(child=True)
GIVE_UP_AFTER = timedelta(hours=24)
QUERIES_PER_CALL = 500  # GetMetricData's limit of metrics per request


class PlanRefusedError(Exception):
    """The plan cannot run as asked (for example, no AMI in a region it releases)."""


def start(aws: Clients, settings: PlanSettings, step: PlanStep) -> dict[str, Any]:
    state = step.state
    home = settings.region
    waves: list[Wave] = []
    for wave in state.layout.waves:
        region = wave.region or home
        ami = state.amis.get(region)
        if ami is None:
            raise PlanRefusedError(f"image {state.image} has no AMI in {region} (wave {wave.name})")
        items = [
            Item(
                fleet=fleet,
                region=region,
                ami=ami,
                name=execution_name(fleet, state.event_id),
                local=region == home,
            )
            for fleet in wave.fleets
        ]
        waves.append(
            Wave(
                name=wave.name,
                region=region,
                items=items,
                max_concurrency=wave.max_concurrency,
                bake_seconds=wave.bake_minutes * 60,
                min_requests=wave.min_requests,
            )
        )
    facts = {
        "environment": state.environment,
        "image": state.image,
        "amis": state.amis,
        "event_id": state.event_id,
        "trigger": state.trigger,
        "waves": [wave.name for wave in waves],
        "wave": 0,
    }
    ledger = plan_ledger(aws, settings)
    ledger.open_run(state.plan, state.run.id, facts)
    if state.promoted_from:
        refuse_rolled_back(ledger, state)
    announce(aws, "Plan Started", state, waves=facts["waves"], amis=state.amis)
    return {"count": len(waves), "all": [wave.model_dump(mode="json") for wave in waves]}


def window(aws: Clients, settings: PlanSettings, step: PlanStep) -> dict[str, Any]:
    state = step.state
    now = clock.now()
    start_at = next_start(state.layout.blocked, now)
    index = state.position.wave if state.position else 0
    wave = state.waves.all[index].name if state.waves else ""
    ledger = plan_ledger(aws, settings)
    if start_at > now:
        ledger.update(state.plan, state.run.id, {"wave": index, "waiting_until": iso(start_at)})
        return {"blocked": True, "start_at": _timestamp(start_at)}
    ledger.update(state.plan, state.run.id, {"wave": index, "wave_started_at": iso(now)})
    announce(aws, "Plan Wave Started", state, wave=wave, index=index)
    return {"blocked": False, "start_at": _timestamp(now)}


def requests(aws: Clients, _: PlanSettings, step: PlanStep) -> dict[str, Any]:
    state = step.state
    wave = _current(state)
    if wave.min_requests == 0:
        return {"enough": True, "requests": 0, "give_up": False}
    since = state.ended.at if state.ended else step.entered_at
    now = clock.now()
    fleets = [item.fleet for item in wave.items]
    regional = aws.in_region(wave.region)
    specs = read_fleets(regional.ssm, state.environment, fleets)
    balancers = sorted({_balancer(str(spec["listener"])) for spec in specs.values()})
    cloudwatch = regional.cloudwatch
    period = max(60, math.ceil((now - since).total_seconds() / 60) * 60)
    total = 0.0
    for first in range(0, len(balancers), QUERIES_PER_CALL):
        queries: list[Any] = [
            {
                "Id": f"r{number}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": REQUESTS.name,
                        "Dimensions": [{"Name": "LoadBalancer", "Value": balancer}],
                    },
                    "Period": period,
                    "Stat": REQUESTS.statistic,
                },
            }
            for number, balancer in enumerate(balancers[first : first + QUERIES_PER_CALL])
        ]
        pages = cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=since, EndTime=now
        )
        total += sum(sum(r.get("Values", [])) for page in pages for r in page["MetricDataResults"])
    enough = total >= wave.min_requests
    give_up = not enough and now - since >= timedelta(seconds=wave.bake_seconds) + GIVE_UP_AFTER
    return {"enough": enough, "requests": int(total), "give_up": give_up}


def outcome(aws: Clients, settings: PlanSettings, step: PlanStep) -> dict[str, Any]:
    """How the wave's releases ended: released (every one succeeded), or which failed
    and which never started (because one had failed, or because their item failed
    before its release began: either way the wave is not released)."""
    wave = _current(step.state)
    failed, not_started = _failed_releases(aws, settings, wave)
    reasons = [f"{f['fleet']} in {f['region']}: {f['why']}" for f in failed]
    if not_started:
        reasons.append(f"not started: {', '.join(not_started)}")
    released = not failed and not not_started
    return {
        "released": released,
        "reason": "; ".join(reasons),
        "failed": failed,
        "not_started": not_started,
    }


def halt(aws: Clients, settings: PlanSettings, step: PlanStep) -> dict[str, Any]:
    """Record why the run halted, and the token a decision will answer."""
    state = step.state
    if not step.task_token:
        raise PlanRefusedError("halt needs the task token of its wait")
    wave = _current(state)
    failure = state.failure or {}
    reason = str(failure.get("Cause") or failure.get("Error") or "halted")
    released = (state.outcome or {}) if failure.get("Error") == "ReleaseNotDone" else {}
    failed = released.get("failed", [])
    facts = {
        "halted_wave": wave.name,
        "reason": reason,
        "failed": failed,
        "halted_at": iso(clock.now()),
    }
    plan_ledger(aws, settings).halt(state.plan, state.run.id, token=step.task_token, facts=facts)
    announce(aws, "Plan Halted", state, wave=wave.name, reason=reason, failed=failed)
    return facts


def refuse_rolled_back(ledger: PlanLedger, state: PlanState) -> None:
    """A promoted image whose AMI rolled back in an earlier environment is refused."""
    for region, ami in sorted(state.amis.items()):
        rollback = ledger.rollback_of(ami)
        if rollback:
            raise PlanRefusedError(
                f"AMI {ami} ({region}) rolled back in {rollback.get('environment')} "
                f"(fleet {rollback.get('fleet')}, release {rollback.get('release_id')}): "
                f"{rollback.get('reason') or 'no reason given'}"
            )


def may_start(aws: Clients, settings: PlanSettings, step: ItemStep) -> dict[str, Any]:
    """Whether the item's release may start: not once a release of its wave failed."""
    run = plan_ledger(aws, settings).run_item(step.run.plan, step.run.id)
    return {"go": run.get("failed_wave") != step.run.wave}


def mark_failed(aws: Clients, settings: PlanSettings, step: ItemStep) -> dict[str, Any]:
    """A release of the wave failed: no other of the wave starts after it."""
    plan_ledger(aws, settings).update(step.run.plan, step.run.id, {"failed_wave": step.run.wave})
    return {"fleet": step.item.fleet, "region": step.item.region}


def finish(aws: Clients, settings: PlanSettings, step: PlanStep, outcome: str) -> dict[str, Any]:
    state = step.state
    facts: dict[str, Any] = {"status": outcome, "ended_at": iso(clock.now())}
    if state.failure:
        facts["reason"] = str(state.failure.get("Cause") or state.failure.get("Error"))
    plan_ledger(aws, settings).update(state.plan, state.run.id, facts)
    detail_type = {
        "succeeded": "Plan Succeeded",
        "abandoned": "Plan Abandoned",
        "rejected": "Plan Abandoned",
    }.get(outcome, "Plan Failed")
    # The image, its AMIs and (for a later environment in another account) the keys
    # that encrypt them: a later environment's plan releases them after a success.
    keys = _keys(aws, settings, state) if outcome == "succeeded" and settings.key_parameter else {}
    extra = {"keys": keys} if keys else {}
    announce(aws, detail_type, state, image=state.image, amis=state.amis, **extra, **facts)
    return facts


def _keys(aws: Clients, settings: PlanSettings, state: PlanState) -> dict[str, str]:
    """The ARN of this environment's key in each region of the image's AMIs."""
    return {
        region: aws.in_region(region).ssm.get_parameter(Name=settings.key_parameter)["Parameter"][
            "Value"
        ]
        for region in sorted(state.amis)
    }


def start_release(aws: Clients, settings: PlanSettings, step: ItemStep) -> dict[str, Any]:
    """Start the item's release in its region; one this run already started is left be."""
    item = step.item
    stepfunctions = aws.in_region(item.region).stepfunctions
    try:
        stepfunctions.start_execution(
            stateMachineArn=settings.release_state_machine_in(item.region),
            name=item.name,
            input=json.dumps(step.request),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
    return {"status": "RUNNING"}


def check_release(aws: Clients, settings: PlanSettings, step: ItemStep) -> dict[str, Any]:
    item = step.item
    execution = aws.in_region(item.region).stepfunctions.describe_execution(
        executionArn=_execution_arn(settings, item)
    )
    return {"status": execution["status"]}


def _failed_releases(
    aws: Clients, settings: PlanSettings, wave: Wave
) -> tuple[list[dict[str, str]], list[str]]:
    """The wave's releases that ended without success (with the ledger's reason when the
    release ran here), and the fleets whose release never started."""
    failed: list[dict[str, str]] = []
    not_started: list[str] = []
    for item in wave.items:
        stepfunctions = aws.in_region(item.region).stepfunctions
        try:
            execution = stepfunctions.describe_execution(
                executionArn=_execution_arn(settings, item)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                not_started.append(item.fleet)
                continue
            raise
        status = execution["status"]
        if status == "SUCCEEDED":
            continue
        why = status.lower()
        if item.local:
            release = plain(
                aws.dynamodb.get_item(
                    TableName=settings.table_name, Key=release_key(item.fleet, item.name)
                ).get("Item", {})
            )
            why = str(release.get("reason") or release.get("outcome") or why)
        failed.append({"fleet": item.fleet, "region": item.region, "status": status, "why": why})
    return failed, not_started


def _execution_arn(settings: PlanSettings, item: Item) -> str:
    machine = settings.release_state_machine_in(item.region)
    return machine.replace(":stateMachine:", ":execution:") + f":{item.name}"


def _balancer(listener_arn: str) -> str:
    """`arn:...:listener/app/<name>/<id>/<listener id>` -> `app/<name>/<id>`, the
    LoadBalancer dimension of its metrics."""
    resource = listener_arn.split(":", 5)[5].removeprefix("listener/")
    return resource.rsplit("/", 1)[0]


def _current(state: PlanState) -> Wave:
    if state.current is None:
        raise PlanRefusedError("no current wave in the state")
    return state.current.wave


def _timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as a Wait state's TimestampPath requires."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_ledger(aws: Clients, settings: PlanSettings) -> PlanLedger:
    return PlanLedger(aws.dynamodb, settings.table_name)


def announce(aws: Clients, detail_type: Any, state: PlanState, **detail: Any) -> None:
    """A `phoenix` plan event; best effort (the step has done its work)."""
    body = {"environment": state.environment, "plan": state.plan, "run": state.run.id, **detail}
    try:
        put(aws.events, detail_type, body)
    except (ClientError, EventNotAcceptedError) as error:
        logger.warning(
            "plan event not sent", extra={"detail_type": detail_type, "error": str(error)}
        )
