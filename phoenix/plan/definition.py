"""A plan's state machine definition, state by state (docs/adr/0011-release-plans.md).

Input: the trigger's plan request (environment, plan, image, amis, event_id, trigger).
The plan's layout (its waves and blocked windows) is written into the definition, so a
run keeps the plan it started with. For each wave: wait while a blocked window applies,
release the wave's fleets with a Distributed Map (each item is one fleet's release
execution, at most `max_concurrency` at once, no failure tolerated), bake, then check
that the wave's fleets served the requests the bake needs. A failed or rolled-back
release (or a bake that never saw its requests) halts the run: it waits on a task token
for a `Plan Resume Requested` (next wave) or `Plan Abandon Requested`.

A promoted image (docs/adr/0012-promotion.md) first bakes in the earlier environment
(`PromotionBake`), then waits for a person's approval when the environment asks for it
(`AwaitApproval`, a task token answered by `Promotion Approved` or `Promotion Rejected`),
and is refused (`Promotable`) if any of its AMIs rolled back in an earlier environment.

A fleet in this region is released by `states:startExecution.sync:2`; one in another
region by the plan function (Step Functions starts nested executions in its own region
only), polled every REMOTE_POLL.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from phoenix.config.plans import Wave
from phoenix.config.promotion import PromotionConfig
from phoenix.platform.functions import invoked_by_state_machine
from phoenix.release.definition import LAMBDA_RETRYABLE

REMOTE_POLL = Duration.minutes(5)
BAKE_RECHECK = Duration.minutes(10)
# How long a halted run waits for a decision before it ends abandoned.
DECISION_TIMEOUT = Duration.days(14)


def layout(waves: list[Wave], blocked: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan as the definition holds it (phoenix/plan/runtime/models.py, Layout)."""
    return {
        "waves": [
            {
                "name": wave.name,
                "region": wave.region,
                "fleets": list(wave.fleets),
                "max_concurrency": wave.max_concurrency,
                "bake_minutes": wave.bake_minutes,
                "min_requests": wave.min_requests,
            }
            for wave in waves
        ],
        "blocked": blocked,
    }


class PlanDefinition(Construct):
    """Builds the chain; `self.start` is the state machine's first state."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        plan_layout: dict[str, Any],
        step: lambda_.IFunction,
        release: sfn.IStateMachine,
        promotion: PromotionConfig | None = None,
    ) -> None:
        super().__init__(scope, id)
        self._function = step  # every Lambda task of the plan invokes it
        invoked_by_state_machine(step)
        succeeded = self._step("RecordSucceeded", "succeeded", "$.outcome").next(
            sfn.Succeed(self, "PlanSucceeded")
        )
        abandoned = self._step("RecordAbandoned", "abandoned", "$.outcome").next(
            sfn.Fail(self, "PlanAbandoned", error="PlanAbandoned", cause="see the ledger")
        )
        failed = self._step("RecordFailed", "failed", "$.outcome").next(
            sfn.Fail(self, "PlanFailed", error="PlanFailed", cause="see the ledger")
        )
        halt = self._step("Halt", "halt", "$.decision", token=True)
        halt.add_catch(abandoned, errors=["States.Timeout"], result_path="$.failure")
        advance = sfn.Pass(
            self,
            "Advance",
            parameters={"wave.$": "States.MathAdd($.position.wave, 1)"},
            result_path="$.position",
        )
        halt.next(
            sfn.Choice(self, "Decision")
            .when(sfn.Condition.string_equals("$.decision.decision", "resume"), advance)
            .otherwise(abandoned)
        )
        next_wave = sfn.Choice(self, "NextWave")
        advance.next(next_wave)

        window = self._step("Window", "window", "$.window")
        window.add_catch(halt, result_path="$.failure")
        wait_window = sfn.Wait(
            self, "WaitForWindow", time=sfn.WaitTime.timestamp_path("$.window.start_at")
        ).next(window)
        current = sfn.Pass(
            self,
            "Wave",
            parameters={"wave.$": "States.ArrayGetItem($.waves.all, $.position.wave)"},
            result_path="$.current",
        )
        next_wave.when(
            sfn.Condition.number_less_than_json_path("$.position.wave", "$.waves.count"),
            current.next(window),
        ).otherwise(succeeded)
        releases = self._releases(release)
        releases.add_catch(halt, result_path="$.failure")
        outcome = self._step("WaveOutcome", "outcome", "$.outcome")
        outcome.add_catch(halt, result_path="$.failure")
        wave_failed = sfn.Pass(
            self,
            "WaveFailed",
            parameters={"Error": "ReleaseNotDone", "Cause.$": "$.outcome.reason"},
            result_path="$.failure",
        ).next(halt)
        window.next(
            sfn.Choice(self, "Blocked")
            .when(sfn.Condition.boolean_equals("$.window.blocked", True), wait_window)
            .otherwise(releases)
        )
        requests = self._step("CountRequests", "requests", "$.requests")
        requests.add_catch(halt, result_path="$.failure")
        too_quiet = sfn.Pass(
            self,
            "TooFewRequests",
            parameters={
                "Error": "NotEnoughRequests",
                "Cause.$": "States.Format('wave {} served {} requests after its bake, fewer "
                "than {}', $.current.wave.name, $.requests.requests, "
                "$.current.wave.min_requests)",
            },
            result_path="$.failure",
        ).next(halt)
        bake_more = sfn.Wait(self, "BakeLonger", time=sfn.WaitTime.duration(BAKE_RECHECK)).next(
            requests
        )
        wave_ended = sfn.Pass(
            self,
            "WaveEnded",
            parameters={"at.$": "$$.State.EnteredTime"},
            result_path="$.ended",
        )
        releases.next(outcome).next(
            sfn.Choice(self, "WaveReleased")
            .when(sfn.Condition.boolean_equals("$.outcome.released", False), wave_failed)
            .otherwise(wave_ended)
        )
        wave_ended.next(
            sfn.Wait(self, "Bake", time=sfn.WaitTime.seconds_path("$.current.wave.bake_seconds"))
        ).next(requests).next(
            sfn.Choice(self, "Baked")
            .when(sfn.Condition.boolean_equals("$.requests.enough", True), advance)
            .when(sfn.Condition.boolean_equals("$.requests.give_up", True), too_quiet)
            .otherwise(bake_more)
        )

        start = self._step("Start", "start", "$.waves")
        start.add_catch(failed, result_path="$.failure")
        first_wave = sfn.Pass(
            self,
            "FirstWave",
            result=sfn.Result.from_object({"wave": 0}),
            result_path="$.position",
        )
        first_wave.next(next_wave)
        if promotion is not None:
            self._promotion(promotion, start, first_wave, failed, abandoned)
        else:
            start.next(first_wave)
        self.start = (
            sfn.Pass(
                self,
                "Plan",
                parameters={
                    "id": sfn.JsonPath.string_at("$$.Execution.Name"),
                    "started_at": sfn.JsonPath.string_at("$$.Execution.StartTime"),
                },
                result_path="$.run",
            )
            .next(
                sfn.Pass(
                    self,
                    "Layout",
                    result=sfn.Result.from_object(plan_layout),
                    result_path="$.layout",
                )
            )
            .next(start)
        )

    def _promotion(
        self,
        promotion: PromotionConfig,
        start: sfn.INextable,
        first_wave: sfn.IChainable,
        failed: sfn.IChainable,
        abandoned: sfn.IChainable,
    ) -> None:
        """Start -> PromotionBake -> [AwaitApproval -> Approval] -> Promotable -> FirstWave.
        A run of this state machine is always a promotion (its trigger starts no other)."""
        promotable = self._step("Promotable", "promotable", "$.promotable")
        promotable.add_catch(failed, result_path="$.failure")
        promotable.next(first_wave)
        after_bake: sfn.IChainable = promotable
        if promotion.approval:
            ask = self._step("AwaitApproval", "approval", "$.approval", token=True)
            ask.add_catch(abandoned, errors=["States.Timeout"], result_path="$.failure")
            rejected = self._step("RecordRejected", "rejected", "$.outcome").next(
                sfn.Fail(
                    self, "PromotionRejected", error="PromotionRejected", cause="see the ledger"
                )
            )
            ask.next(
                sfn.Choice(self, "Approval")
                .when(sfn.Condition.string_equals("$.approval.decision", "approve"), promotable)
                .otherwise(rejected)
            )
            after_bake = ask
        if promotion.bake_minutes == 0:
            start.next(after_bake)
            return
        start.next(
            sfn.Wait(
                self,
                "PromotionBake",
                time=sfn.WaitTime.duration(Duration.minutes(promotion.bake_minutes)),
                comment="the image serves the earlier environment meanwhile",
            )
        ).next(after_bake)

    def _releases(self, release: sfn.IStateMachine) -> sfn.DistributedMap:
        """The wave's releases, one child execution per fleet, each run to its end (a
        release is never cut short because another failed). Once one of the wave failed,
        the fleets not yet started are not (MayStart); WaveOutcome then names the failed."""
        releases = sfn.DistributedMap(
            self,
            "Releases",
            items_path="$.current.wave.items",
            item_selector={
                "item.$": "$$.Map.Item.Value",
                "run": {
                    "plan.$": "$.plan",
                    "id.$": "$.run.id",
                    "wave.$": "$.position.wave",
                },
                "request": {
                    "environment.$": "$.environment",
                    "fleet.$": "$$.Map.Item.Value.fleet",
                    "ami.$": "$$.Map.Item.Value.ami",
                    "trigger.$": "States.Format('plan {}', $.plan)",
                    "event_id.$": "$.event_id",
                    "image.$": "$.image",
                },
            },
            max_concurrency_path="$.current.wave.max_concurrency",
            result_path=sfn.JsonPath.DISCARD,
            map_execution_type=sfn.StateMachineType.STANDARD,
        )
        # A failed release is recorded, and its item ends there: WaveOutcome judges the
        # wave after the map. (A Map Run fails on more failed items than it tolerates, and
        # stops the rest, which would cut its siblings' releases short.)
        failed = self._item_step("MarkFailed", "mark_failed", "$.marked").next(
            sfn.Succeed(self, "FailureRecorded")
        )
        here = tasks.StepFunctionsStartExecution(
            self,
            "Release",
            state_machine=release,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            name=sfn.JsonPath.string_at("$.item.name"),
            input=sfn.TaskInput.from_json_path_at("$.request"),
            result_path=sfn.JsonPath.DISCARD,
        )
        here.add_catch(failed, result_path="$.error")
        start_remote = self._item_step("StartRemoteRelease", "start_release", "$.remote")
        check_remote = self._item_step("CheckRemoteRelease", "check_release", "$.remote")
        poll = sfn.Wait(self, "RemoteReleaseRuns", time=sfn.WaitTime.duration(REMOTE_POLL))
        start_remote.next(poll).next(check_remote).next(
            sfn.Choice(self, "RemoteReleaseEnded")
            .when(sfn.Condition.string_equals("$.remote.status", "RUNNING"), poll)
            .when(
                sfn.Condition.string_equals("$.remote.status", "SUCCEEDED"),
                sfn.Succeed(self, "RemoteReleased"),
            )
            .otherwise(failed)
        )
        may_start = self._item_step("MayStart", "may_start", "$.start")
        releases.item_processor(
            may_start.next(
                sfn.Choice(self, "Started")
                .when(
                    sfn.Condition.boolean_equals("$.start.go", False),
                    sfn.Succeed(self, "NotStarted", comment="a release of the wave failed"),
                )
                .when(sfn.Condition.boolean_equals("$.item.local", True), here)
                .otherwise(start_remote)
            )
        )
        return releases

    def _step(
        self, id: str, action: str, result_path: str, *, token: bool = False
    ) -> tasks.LambdaInvoke:
        payload: dict[str, Any] = {
            "action": action,
            "state": sfn.JsonPath.entire_payload,
            "entered_at": sfn.JsonPath.string_at("$$.State.EnteredTime"),
        }
        options: dict[str, Any] = {"payload_response_only": True}
        if token:
            payload["task_token"] = sfn.JsonPath.task_token
            options = {
                "integration_pattern": sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
                "task_timeout": sfn.Timeout.duration(DECISION_TIMEOUT),
            }
        task = tasks.LambdaInvoke(
            self,
            id,
            lambda_function=self._function,
            payload=sfn.TaskInput.from_object(payload),
            result_path=result_path,
            retry_on_service_exceptions=False,
            **options,
        )
        task.add_retry(errors=LAMBDA_RETRYABLE, interval=Duration.seconds(2), max_attempts=6)
        return task

    def _item_step(self, id: str, action: str, result_path: str) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            id,
            lambda_function=self._function,
            payload=sfn.TaskInput.from_object(
                {
                    "action": action,
                    "item": sfn.JsonPath.object_at("$.item"),
                    "run": sfn.JsonPath.object_at("$.run"),
                    "request": sfn.JsonPath.object_at("$.request"),
                }
            ),
            payload_response_only=True,
            result_path=result_path,
            retry_on_service_exceptions=False,
        )
        task.add_retry(errors=LAMBDA_RETRYABLE, interval=Duration.seconds(2), max_attempts=6)
        return task
