"""Preflight: take the fleet's lock, open the release in the ledger, check rollback safety.

A deploy's release whose deploy changed nothing the fleet runs raises
NothingToReleaseError before anything else (the execution ends there).
The lock is one conditional write; a locked or paused fleet raises LockRefusedError
(the state machine records the release as rejected). A failed check raises
PreflightFailedError naming the check and the resource. Returns the release plan.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics

from phoenix.kernel import ledger
from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import Ledger
from phoenix.kernel.settings import ReleaseSettings
from phoenix.release.runtime import events as release_events
from phoenix.release.runtime import preflight, scan_gate
from phoenix.release.runtime.models import StepInput
from phoenix.release.runtime.steps import lambda_entry, record, run_step

logger = Logger()
metrics = Metrics()


def handle(event: Any, settings: ReleaseSettings, aws: Clients) -> dict[str, Any]:
    def body(step: StepInput) -> dict[str, Any]:
        state = step.state
        if state.is_deploy:
            preflight.check_deploy_changed(
                state, ssm=aws.ssm, ec2=aws.ec2, autoscaling=aws.autoscaling
            )
        Ledger(aws.dynamodb, settings.table_name).acquire(
            state.fleet, state.release.id, hold=ledger.LOCK_HOLD, over_drill=state.is_rollback
        )
        Ledger(aws.dynamodb, settings.table_name).open_release(
            state.fleet,
            state.release.id,
            {
                "trigger": state.trigger,
                "event_id": state.event_id,
                "image": state.image,
                "to_ami": state.ami,
                "strategy": state.fleet_spec.strategy,
            },
        )
        release_events.publish(aws.events, "Release Started", state, trigger=state.trigger)
        scan_gate.check_image_scan(state, lambda region: aws.in_region(region).imagebuilder)
        plan = preflight.run(
            state,
            ssm=aws.ssm,
            ec2=aws.ec2,
            autoscaling=aws.autoscaling,
            cloudwatch=aws.cloudwatch,
        )
        Ledger(aws.dynamodb, settings.table_name).record_flight(
            state.fleet,
            state.release.id,
            {
                "strategy": state.fleet_spec.strategy,
                "active_slot": plan.active_slot,
                "target_slot": plan.target_slot,
                "from_ami": plan.from_ami,
                "to_ami": state.ami,
                "rollback": state.is_rollback,
            },
        )
        record(
            aws,
            settings,
            state,
            "preflight passed",
            metrics,
            from_ami=plan.from_ami,
            active_slot=plan.active_slot,
            target_slot=plan.target_slot,
        )
        logger.info("preflight passed", extra={"plan": plan.model_dump(mode="json")})
        return plan.model_dump(mode="json")

    result: dict[str, Any] = run_step(event, {"run"}, logger, body)
    return result


lambda_handler = lambda_entry(handle, logger, metrics)
