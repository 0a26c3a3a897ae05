"""Pre-traffic tests (runtime/pretraffic.py).

Action `run`: invoke the fleet's hook against the target slot's healthy targets on the
new AMI, before any traffic moves to them; record `pre-traffic tests passed`, or
`pre-traffic tests failed` and raise PreTrafficFailedError, which the state machine
rolls back. A rollback release, or a fleet without a hook, skips them.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics

from phoenix.kernel.clients import Clients
from phoenix.kernel.settings import ReleaseSettings
from phoenix.release.runtime import pretraffic
from phoenix.release.runtime.models import StepInput
from phoenix.release.runtime.steps import lambda_entry, record, run_step

logger = Logger()
metrics = Metrics()


def handle(event: Any, settings: ReleaseSettings, aws: Clients) -> dict[str, Any]:
    def body(step: StepInput) -> dict[str, Any]:
        state = step.state
        hook = state.fleet_spec.pre_traffic_hook
        if hook is None or state.is_rollback:
            # a rollback release restores what served before: nothing to hold it back
            return {"passed": True, "skipped": True}
        targets = pretraffic.new_targets(aws.elbv2, aws.ec2, state)
        instances = [t["id"] for t in targets]
        try:
            if not targets:
                raise pretraffic.PreTrafficFailedError("no healthy target on the new AMI to test")
            event = pretraffic.hook_event(state, hook, targets)
            reason = pretraffic.run_hook(aws.invoker(hook.timeout_seconds), hook, event)
        except pretraffic.PreTrafficFailedError as failed:
            record(
                aws,
                settings,
                state,
                "pre-traffic tests failed",
                metrics,
                hook=hook.function,
                instances=instances,
                detail=str(failed),
            )
            raise
        record(
            aws,
            settings,
            state,
            "pre-traffic tests passed",
            metrics,
            hook=hook.function,
            instances=instances,
            detail=reason,
        )
        return {"passed": True, "skipped": False}

    result: dict[str, Any] = run_step(event, {"run"}, logger, body)
    return result


lambda_handler = lambda_entry(handle, logger, metrics)
