"""The release state machine's definition, state by state (docs/architecture.md, The release).

Input: the release trigger's request (environment, fleet, ami, trigger, event_id,
image). Every Lambda step receives `{"action", "state": $, "entered_at"[, "task_token"]}`
(phoenix/release/runtime/models.py). Every state after the lock has a Catch leading to
the rollback path (rollback_path.py); Lambda steps retry the Lambda service's retryable
errors (throttling included), the direct ModifyListener call retries throttling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from phoenix.kernel.fleet_calls import ACTIVE_REFRESH_STATUSES
from phoenix.kernel.locks import DrillLockError, FleetPausedError, LockRefusedError
from phoenix.kernel.names import fleet_registry
from phoenix.platform.functions import invoked_by_state_machine
from phoenix.release import lock_wait
from phoenix.release.read_fleet import read_fleet
from phoenix.release.rollback_path import rollback_path
from phoenix.release.runtime.preflight import NothingToReleaseError
from phoenix.release.runtime.strategy import ForeignRefreshError
from phoenix.release.shift import shift_traffic

# The Lambda service's errors a step retries: those "Best practices: handle Lambda service
# exceptions" (Step Functions developer guide) lists, throttling included, and the client
# timeout CDK's own default retry covers. CDK's `retry_on_service_exceptions` omits
# Lambda.TooManyRequestsException.
LAMBDA_RETRYABLE = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]


@dataclass(frozen=True)
class ReleaseFunctions:
    preflight: lambda_.IFunction
    prepare: lambda_.IFunction
    deploy: lambda_.IFunction
    gate: lambda_.IFunction
    rollback: lambda_.IFunction
    finalize: lambda_.IFunction
    # HoldLock: the lock held until the execution's deadline (runtime/cleanup.py).
    hold: lambda_.IFunction
    # PreTrafficTests: the fleet's hook, before any traffic (runtime/pretraffic.py).
    pretraffic: lambda_.IFunction


class ReleaseDefinition(Construct):
    """Builds the chain; `self.start` is the state machine's first state.

    The fleet's spec is read from the fleet registry (`registry`, the path under which
    CloudFormation writes one parameter per fleet) by a direct GetParameter, so the
    definition holds nothing per fleet. The direct ModifyListener may change the listeners
    of `environment`'s fleets (by their tag).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: ReleaseFunctions,
        environment: str,
    ) -> None:
        super().__init__(scope, id)
        self._functions = functions
        self._environment = environment
        fail = sfn.Fail(self, "ReleaseNotDone", error="ReleaseNotDone", cause="see the ledger")
        self._failed = self._step("RecordFailure", functions.finalize, "failed", "$.outcome").next(
            fail
        )
        rolled_back = self._step(
            "RecordRollback", functions.finalize, "rolled_back", "$.outcome"
        ).next(fail)
        self._rollback = rollback_path(
            self,
            self._step,
            rollback=functions.rollback,
            deploy=functions.deploy,
            recorded=rolled_back,
            failed=self._failed,
        )
        self._success = self._succeeded()

        release = sfn.Pass(
            self,
            "Release",
            parameters={
                "id": sfn.JsonPath.string_at("$$.Execution.Name"),
                "started_at": sfn.JsonPath.string_at("$$.Execution.StartTime"),
            },
            result_path="$.release",
        )
        self.start = release.next(read_fleet(self, fleet_registry(environment))).next(
            self._locked()
        )

    # -- building blocks -----------------------------------------------------------------

    def _step(
        self,
        id: str,
        function: lambda_.IFunction,
        action: str,
        result_path: str,
        *,
        token: bool = False,
        timeout_path: str | None = None,
    ) -> tasks.LambdaInvoke:
        payload: dict[str, Any] = {
            "action": action,
            "state": sfn.JsonPath.entire_payload,
            "entered_at": sfn.JsonPath.string_at("$$.State.EnteredTime"),
        }
        if token:
            payload["task_token"] = sfn.JsonPath.task_token
        pattern: dict[str, Any] = (
            {"integration_pattern": sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN}
            if token
            else {"payload_response_only": True}
        )
        invoked_by_state_machine(function)
        task = tasks.LambdaInvoke(
            self,
            id,
            **pattern,
            lambda_function=function,
            payload=sfn.TaskInput.from_object(payload),
            result_path=result_path,
            task_timeout=sfn.Timeout.at(timeout_path) if timeout_path else None,
            retry_on_service_exceptions=False,
        )
        task.add_retry(
            errors=LAMBDA_RETRYABLE,
            interval=Duration.seconds(2),
            max_attempts=6,
            backoff_rate=2,
        )
        return task

    def _guarded(self, task: sfn.TaskStateBase) -> sfn.TaskStateBase:
        task.add_catch(self._rollback, errors=[sfn.Errors.ALL], result_path="$.error")
        return task

    # -- the release -----------------------------------------------------------------------

    def _locked(self) -> sfn.IChainable:
        functions = self._functions
        preflight = self._step("Preflight", functions.preflight, "run", "$.plan")
        rejected = self._step("RecordRejection", functions.finalize, "rejected", "$.outcome")
        reject = rejected.next(sfn.Fail(self, "Rejected", error="ReleaseRejected"))
        preflight.add_catch(reject, errors=[FleetPausedError.__name__], result_path="$.error")
        # A fleet a rollback drill holds for a few minutes: waited for (lock_wait.py).
        preflight.add_catch(
            lock_wait.drill_wait(self).next(preflight),
            errors=[DrillLockError.__name__],
            result_path="$.error",
        )
        # A locked fleet: rejected, waited for, or queued for (lock_wait.py).
        preflight.add_catch(
            lock_wait.queue_or_reject(self, preflight, reject),
            errors=[LockRefusedError.__name__],
            result_path="$.error",
        )
        nothing = sfn.Succeed(self, "NothingToRelease", comment="the deploy changed nothing")
        preflight.add_catch(nothing, errors=[NothingToReleaseError.__name__], result_path="$.error")
        preflight.add_catch(self._failed, errors=[sfn.Errors.ALL], result_path="$.error")
        prepare = self._guarded(self._step("Prepare", functions.prepare, "run", "$.prepared"))
        # No wait after the lock may outlast it (canary bakes add up, refresh waits are
        # as long as the refresh): held until the execution's own deadline.
        hold = self._step("HoldLock", functions.hold, "hold", "$.held")
        hold.add_catch(self._failed, errors=[sfn.Errors.ALL], result_path="$.error")
        by_strategy = (
            sfn.Choice(self, "Strategy")
            .when(sfn.Condition.string_equals("$.fleet_spec.strategy", "rolling"), self._rolling())
            .otherwise(self._traffic())
        )
        preflight.next(hold).next(prepare).next(by_strategy)
        return lock_wait.attempts(self, preflight)

    def _succeeded(self) -> sfn.IChainable:
        functions = self._functions
        # Once Succeed has written the parameters and the pointer, the new AMI serves:
        # a failure after that (a tag, the ledger, the event) is retried, and if it
        # still fails, recorded as a failure to look at, never rolled back. Its writes
        # are idempotent, so a retry repeats them safely.
        succeed = self._step("Succeed", functions.finalize, "succeed", "$.outcome")
        succeed.add_retry(
            errors=[sfn.Errors.ALL], interval=Duration.seconds(2), max_attempts=3, backoff_rate=2
        )
        succeed.add_catch(self._failed, errors=[sfn.Errors.ALL], result_path="$.error")
        done = sfn.Succeed(self, "Released")
        window = sfn.Wait(
            self,
            "RollbackWindow",
            time=sfn.WaitTime.seconds_path("$.fleet_spec.rollback_window_seconds"),
        )
        retire = self._step("RetireOldSlot", functions.finalize, "retire", "$.retired")
        # Scaling the old slot in is idempotent: run it again rather than leave the slot up
        # when AWS throttles or fails the call (bench/reliability.py found that).
        retire.add_retry(
            errors=[sfn.Errors.ALL], interval=Duration.seconds(2), max_attempts=3, backoff_rate=2
        )
        retire.add_catch(done, errors=[sfn.Errors.ALL], result_path="$.error")
        keep_warm = (
            sfn.Choice(self, "KeepOldSlotWarm?")
            .when(
                sfn.Condition.boolean_equals("$.outcome.retire", True),
                window.next(retire).next(done),
            )
            .otherwise(done)
        )
        return succeed.next(keep_warm)

    def _rolling(self) -> sfn.IChainable:
        """Instance refresh, ended by its event (task token) or, when none comes in time,
        by polling: at most three more waits, then the release rolls back."""
        functions = self._functions
        start = self._step(
            "StartRefresh",
            functions.deploy,
            "refresh",
            "$.refresh",
            token=True,
            timeout_path="$.plan.refresh_wait_seconds",
        )
        poll = self._step("PollRefresh", functions.deploy, "poll", "$.refresh")
        # Another refresh on the group: the release is recorded failed and that refresh
        # left alone (the rollback would undo it).
        poll.add_catch(self._failed, errors=[ForeignRefreshError.__name__], result_path="$.error")
        self._guarded(poll)
        again = self._step(
            "AwaitRefresh",
            functions.deploy,
            "await",
            "$.refresh",
            token=True,
            timeout_path="$.plan.refresh_wait_seconds",
        )
        for wait in (start, again):
            wait.add_catch(poll, errors=[sfn.Errors.TIMEOUT], result_path="$.timeout")
            self._guarded(wait)
        not_successful = sfn.Pass(
            self,
            "RefreshNotSuccessful",
            parameters={
                "Error": "RefreshNotSuccessful",
                "Cause": sfn.JsonPath.format(
                    "instance refresh ended {}: {}",
                    sfn.JsonPath.string_at("$.refresh.status"),
                    sfn.JsonPath.string_at("$.refresh.reason"),
                ),
            },
            result_path="$.error",
        ).next(self._rollback)
        judge = self._guarded(self._step("RollingHealthGate", functions.gate, "judge", "$.gate"))
        status = sfn.Choice(self, "RefreshStatus")
        status.when(sfn.Condition.string_equals("$.refresh.status", "Successful"), judge)
        status.when(
            sfn.Condition.and_(
                sfn.Condition.or_(
                    *[
                        sfn.Condition.string_equals("$.refresh.status", s)
                        for s in ACTIVE_REFRESH_STATUSES
                    ]
                ),
                sfn.Condition.number_greater_than("$.refresh.polls_left", 0),
            ),
            again,
        )
        status.otherwise(not_successful)
        poll.next(status)
        again.next(status)
        judge.next(self._success)
        return start.next(status)

    def _traffic(self) -> sfn.IChainable:
        """blue_green and canary: the idle slot scaled up and warmed, then traffic moved
        in steps (blue_green: one step of 100), each baked and judged."""
        functions = self._functions
        scale = self._guarded(self._step("ScaleTargetSlot", functions.deploy, "scale", "$.scaled"))
        warm = sfn.Wait(
            self, "WarmingUp", time=sfn.WaitTime.seconds_path("$.fleet_spec.warmup_seconds")
        )
        warmup = self._guarded(self._step("TargetsHealthy", functions.gate, "warmup", "$.warmup"))
        first = sfn.Pass(
            self, "FirstStep", result=sfn.Result.from_object({"value": 0}), result_path="$.index"
        )
        step = sfn.Pass(
            self,
            "TrafficStep",
            parameters={
                "weights": sfn.JsonPath.array_get_item(
                    sfn.JsonPath.list_at("$.plan.steps"), sfn.JsonPath.number_at("$.index.value")
                ),
                "at": sfn.JsonPath.string_at("$$.State.EnteredTime"),
            },
            result_path="$.step",
        )
        shift = self._guarded(shift_traffic(self, self._environment))
        bake = sfn.Wait(self, "Bake", time=sfn.WaitTime.seconds_path("$.fleet_spec.bake_seconds"))
        judge = self._guarded(self._step("HealthGate", functions.gate, "judge", "$.gate"))
        following = sfn.Pass(
            self,
            "NextStep",
            parameters={"value": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.index.value"), 1)},
            result_path="$.index",
        )
        last = (
            sfn.Choice(self, "LastStep?")
            .when(sfn.Condition.boolean_equals("$.step.weights.last", True), self._success)
            .otherwise(following.next(step))
        )
        # A marginal canary judgment bakes the step again, its traffic as it is; with no
        # extension left, a fleet that holds waits for a person's decision (rejected, or
        # none within its approval timeout: the Catch rolls the release back).
        ask = self._guarded(
            self._step(
                "AwaitApproval",
                functions.gate,
                "ask",
                "$.approval",
                token=True,
                timeout_path="$.fleet_spec.approval_seconds",
            )
        )
        extend = (
            sfn.Choice(self, "ExtendBake?")
            .when(sfn.Condition.boolean_equals("$.gate.extend", True), bake)
            .when(sfn.Condition.boolean_equals("$.gate.hold", True), ask.next(last))
            .otherwise(last)
        )
        step.next(shift).next(bake).next(judge).next(extend)
        first.next(step)
        # A fleet with a pre-traffic hook has it test the new slot before any weight moves.
        tested = self._guarded(
            self._step("PreTrafficTests", functions.pretraffic, "run", "$.pretraffic")
        )
        hooked = (
            sfn.Choice(self, "PreTrafficHook?")
            .when(sfn.Condition.is_present("$.fleet_spec.pre_traffic_hook"), tested.next(first))
            .otherwise(first)
        )
        ready = (
            sfn.Choice(self, "Warm?")
            .when(sfn.Condition.boolean_equals("$.warmup.ready", True), hooked)
            .otherwise(warm)
        )
        return scale.next(warm).next(warmup).next(ready)
