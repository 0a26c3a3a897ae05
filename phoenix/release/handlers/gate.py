"""Health gates.

Actions:
- `warmup`: are the target slot's new targets all healthy yet? Returns the count of
  checks left; when none are left and they are still not healthy, GateFailedError;
- `judge`: after a step's bake time, targets healthy, the fleet's alarms OK and, for a
  canary step, the canary's judgment against the baseline passed (recorded, passed or
  not, as the step `canary judged`); a marginal judgment with extensions left asks for
  the bake again (`extend`); with none left, a fleet whose `when_marginal` is `hold` asks
  for a person's decision (`hold`); else GateFailedError;
- `ask` (a task token): the held step waits for a person. The token goes on the fleet
  item (phoenix/kernel/approval.py), the ledger records `approval awaited` and a
  `Canary Approval Requested` event says what is asked (fleet, release, traffic, score,
  reason); the rollback function answers the token on `Canary Step Approved` or
  `Canary Step Rejected` (phoenix/rollback/runtime/approval.py).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from phoenix.kernel import clock
from phoenix.kernel.approval import await_approval
from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import Ledger, iso
from phoenix.kernel.settings import ReleaseSettings
from phoenix.release.runtime import gate
from phoenix.release.runtime.events import publish
from phoenix.release.runtime.models import MalformedStepError, StepInput, Warmup
from phoenix.release.runtime.steps import lambda_entry, record, run_step

logger = Logger()
metrics = Metrics()
JUDGMENT_SCORE = "CanaryJudgmentScore"


def handle(event: Any, settings: ReleaseSettings, aws: Clients) -> dict[str, Any]:
    def body(step: StepInput) -> dict[str, Any]:
        state = step.state
        if step.action == "warmup":
            ready, reason = gate.warmed_up(aws.elbv2, aws.ec2, state)
            before = state.warmup.checks_left if state.warmup else state.fleet_spec.warmup_checks
            left = max(before - 1, 0)
            if not ready and left == 0:
                raise gate.GateFailedError(
                    f"new targets not healthy after {state.fleet_spec.warmup_checks} checks: "
                    f"{reason}"
                )
            if ready:
                Ledger(aws.dynamodb, settings.table_name).mark_warm(state.fleet, state.release.id)
                record(aws, settings, state, "new targets healthy", metrics, targets=reason)
            return Warmup(ready=ready, checks_left=left, reason=reason).model_dump()
        if step.action == "ask":
            return ask(step)
        summary, judged = gate.judge(aws.elbv2, aws.ec2, aws.cloudwatch, state, clock.now())
        weights = state.step.weights.target if state.step else 100
        if judged is not None:
            record(aws, settings, state, "canary judged", traffic=weights, **gate.recorded(judged))
            # the environment's dashboard charts the scores (phoenix/platform/dashboard.py)
            metrics.add_metric(name=JUDGMENT_SCORE, unit=MetricUnit.Percent, value=judged.score)
            left = gate.extensions_left(state)
            if judged.outcome == "marginal" and left > 0:
                # baked again, then judged on every minute since the step began
                return {
                    "summary": summary,
                    "extend": True,
                    "hold": False,
                    "extensions_left": left - 1,
                }
            if judged.outcome == "marginal" and state.fleet_spec.judgment.when_marginal == "hold":
                held = f"canary judgment marginal: {judged.reason}"
                return {"summary": held, "extend": False, "hold": True}
            if judged.outcome != "pass":
                raise gate.GateFailedError(
                    f"canary judgment {judged.outcome} (score {judged.score:.0f}): {judged.reason}"
                )
            summary = f"{summary}; canary judgment passed (score {judged.score:.0f})"
        record(aws, settings, state, "health gate passed", metrics, traffic=weights, detail=summary)
        return {"summary": summary, "extend": False, "hold": False}

    def ask(step: StepInput) -> dict[str, Any]:
        state = step.state
        if step.task_token is None:
            raise MalformedStepError("action ask needs a task token")
        held = getattr(state, "gate", None)
        facts = {
            "asked_at": iso(clock.now()),
            "traffic": state.step.weights.target if state.step else 100,
            "judgment": str(held.get("summary", "")) if isinstance(held, dict) else "",
            "timeout_minutes": state.fleet_spec.judgment.approval_timeout_minutes,
        }
        await_approval(
            Ledger(aws.dynamodb, settings.table_name),
            state.fleet,
            state.release.id,
            token=step.task_token,
            facts=facts,
        )
        record(aws, settings, state, "approval awaited", metrics, **facts)
        # A rule of the environment's sends it to the people who decide.
        publish(aws.events, "Canary Approval Requested", state, **facts)
        return facts

    result: dict[str, Any] = run_step(event, {"warmup", "judge", "ask"}, logger, body)
    return result


lambda_handler = lambda_entry(handle, logger, metrics)
