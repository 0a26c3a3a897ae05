"""Simulated time in the embedded AWS, and state machines that wait in it.

A release waits minutes to hours (bake times, instance refreshes, rollback windows).
Here the world moves on a simulated clock, a minute at a time: each minute, instance
refreshes take their next step and the application model serves a minute of traffic
and evaluates the alarms (`advance`). moto's Step Functions interpreter waits in real
time; in the embedded AWS it waits on this clock instead:
- a Wait state of N seconds lets N simulated seconds pass, at once (a minute at a
  time, ending early when the execution is stopped);
- a task waiting for its token (`.waitForTaskToken`) lets the world move a minute at a
  time until the token comes back (for example from the refresh event receiver) or the
  task's TimeoutSeconds have passed in simulated time, which raises States.Timeout as
  AWS would.
Between minutes, events already put on the bus are delivered (eventbridge.drain), so
what happens is the same on every run. Two executions waiting at once both move the
one clock (time passes faster); the rehearsal and the tests run one release at a time.
Everything that reads or stamps a time reads this clock too (local.sim_time): phoenix's
handlers, moto's timestamps and the interpreter's.

StopExecution "Stops an execution." (Step Functions API reference, StopExecution, whose
answer is the execution's stopDate): from then on its status is ABORTED
(DescribeExecution, status), and a task waiting for its token (developer guide, "Wait
for a Callback with Task Token") waits no longer: it belongs to a stopped execution.
moto's interpreter leaves the execution RUNNING until its worker thread ends, keeps the
token wait going until the token or the timeout, and the timeout error it then raises
turns the status to FAILED. Here a stopped execution is ABORTED when StopExecution
returns and stays so; a token wait ends before the next simulated minute; and what the
stopped state raises on its way out is dropped (no Retry, no Catch, no later state).

A `.sync` / `.sync:2` task ("Run a Job") waits for its job (here, a nested execution) to
end, polling it; it has no task token to wait for ("Wait for a Callback with Task Token"
is its own pattern). moto's interpreter also starts a token wait beside the poll for
every integration that supports both patterns, which here would move the clock for as
long as the job runs; a `.sync` task waits for its job only.

Also here, because the interpreter needs it to call AWS the way Step Functions does:
its AWS SDK integrations reach the embedded endpoint, and `elasticloadbalancingv2`
(Step Functions' name) maps to boto3's `elbv2`.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import os
import threading
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.elbv2.models import elbv2_backends
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (  # noqa: E501
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (  # noqa: E501
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
)

from local import application, eventbridge, iam, instance_refresh_clock, sim_time

ACCOUNT = "123456789012"
MINUTE = 60.0
LONGEST_WAIT = 7 * 24 * 3600.0  # a token wait without a timeout gives up after a week
_lock = threading.RLock()
_elapsed = {"seconds": 0.0}
_watchers: list[Callable[[], None]] = []
# The environment of each task waiting for its token, to see its execution stopped.
_waiting: weakref.WeakKeyDictionary[CallbackEndpoint, Environment] = weakref.WeakKeyDictionary()


def watch(watcher: Callable[[], None]) -> Callable[[], None]:
    """Call `watcher` after every simulated minute and every Lambda invocation (tests use
    it to check an invariant all through a release); returns what stops it."""
    _watchers.append(watcher)
    return lambda: _watchers.remove(watcher)


def notify_watchers() -> None:
    with iam.the_world_moving():
        for watcher in list(_watchers):
            watcher()


_due: list[tuple[float, int, Callable[[], None]]] = []
_order = itertools.count()


def at(delay: float, action: Callable[[], None]) -> None:
    """Run `action` once `delay` simulated seconds have passed (checked after each
    simulated minute, by whatever advances the clock)."""
    with _lock:
        heapq.heappush(_due, (elapsed() + delay, next(_order), action))


def scheduled() -> int:
    """How many actions wait for simulated time to pass (retries, for example)."""
    with _lock:
        return len(_due)


def _drop_due() -> None:
    with _lock:
        _due.clear()


sim_time.on_forget(_drop_due)


def _run_due() -> None:
    while True:
        with _lock:
            if not _due or _due[0][0] > elapsed():
                return
            _, _, action = heapq.heappop(_due)
        action()


def elapsed() -> float:
    """Simulated seconds passed in this process."""
    return _elapsed["seconds"]


def advance(seconds: float = MINUTE) -> None:
    """Let `seconds` of simulated time pass, a minute at a time (at least one minute)."""
    for _ in range(application.minutes(seconds)):
        with iam.the_world_moving():
            with _lock:
                instance_refresh_clock.advance(MINUTE)
                for region, backend in list(elbv2_backends[ACCOUNT].items()):
                    if backend.load_balancers:
                        application.advance(ACCOUNT, region)
                _elapsed["seconds"] += MINUTE
                sim_time.passed(MINUTE)
                notify_watchers()
            eventbridge.drain()
            _run_due()


def _wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:  # noqa: ARG001
    """A Wait state: simulated time passes a minute at a time, and stops passing when
    the execution is stopped (StopExecution ends a Wait at once in AWS)."""
    if wait_seconds <= 0:
        return
    for _ in range(application.minutes(float(wait_seconds))):
        if not env.is_running():
            return
        advance(MINUTE)


def _wait_for_token(self: CallbackEndpoint, timeout: float | None = None) -> Any:
    """A task waiting for its token: the world moves a minute at a time until the token
    comes back, the timeout passes, or the execution is stopped (then no outcome)."""
    limit = LONGEST_WAIT if timeout is None else float(timeout)
    env = _waiting.get(self)
    waited = 0.0
    eventbridge.drain()
    while not self._notify_event.is_set() and waited < limit:
        if env is not None and not env.is_running():
            return None
        step = min(MINUTE, limit - waited)
        advance(step)
        waited += step
    return self._outcome


def _watching_the_execution(evaluate: Callable[..., Any]) -> Callable[..., Any]:
    """Remember which execution (its environment) a token wait belongs to."""

    @functools.wraps(evaluate)
    def eval_wait_for_task_token(
        self: StateTaskServiceCallback,
        env: Environment,
        timeout_seconds: int,
        callback_endpoint: CallbackEndpoint,
        heartbeat_endpoint: Any,
    ) -> Any:
        _waiting[callback_endpoint] = env
        return evaluate(
            self,
            env=env,
            timeout_seconds=timeout_seconds,
            callback_endpoint=callback_endpoint,
            heartbeat_endpoint=heartbeat_endpoint,
        )

    return eval_wait_for_task_token


def _ending_quietly_when_stopped(evaluate: Callable[..., Any]) -> Callable[..., Any]:
    """A Task, Parallel or Map state of a stopped execution ends without an outcome: what
    it raises on its way out (a token wait cut short) is neither retried nor caught and
    does not fail the execution."""

    @functools.wraps(evaluate)
    def evaluate_with_timeout(self: ExecutionState, env: Environment) -> None:
        try:
            evaluate(self, env)
        except Exception:
            if isinstance(env.program_state(), ProgramStopped):
                return
            raise

    return evaluate_with_timeout


def _aborting_at_once(stop: Callable[..., None]) -> Callable[..., None]:
    """StopExecution: the execution is ABORTED when the call returns, with its stopDate."""

    @functools.wraps(stop)
    def stop_execution(
        self: Execution, stop_date: datetime, error: str | None, cause: str | None
    ) -> None:
        stop(self, stop_date=stop_date, error=error, cause=cause)
        worker = self.exec_worker
        env = worker.env if worker is not None else None
        stopped = env is not None and isinstance(env.program_state(), ProgramStopped)
        if stopped and self.exec_status == ExecutionStatus.RUNNING:
            self.stop_date = stop_date if stop_date.tzinfo else stop_date.replace(tzinfo=UTC)
            self.exec_status = ExecutionStatus.ABORTED

    return stop_execution


def _keeping_aborted(reflect: Callable[..., None]) -> Callable[..., None]:
    """An ABORTED execution stays ABORTED when its worker thread ends."""

    @functools.wraps(reflect)
    def reflect_execution_status(self: BaseExecutionWorkerCommunication) -> None:
        if self.execution.exec_status == ExecutionStatus.ABORTED:
            return
        reflect(self)

    return reflect_execution_status


def _job_only(evaluate: Callable[..., Any]) -> Callable[..., Any]:
    """A `.sync` task polls its job and waits for no token."""

    @functools.wraps(evaluate)
    def eval_sync(
        self: StateTaskServiceCallback,
        *,
        env: Environment,
        sync_resolver: Callable[[], Any] | None,
        timeout_seconds: int | None,
        callback_endpoint: CallbackEndpoint | None,  # noqa: ARG001
        heartbeat_endpoint: Any,
    ) -> Any:
        return evaluate(
            self,
            env=env,
            sync_resolver=sync_resolver,
            timeout_seconds=timeout_seconds,
            callback_endpoint=None,
            heartbeat_endpoint=heartbeat_endpoint,
        )

    return eval_sync


@functools.cache
def _install_stopping() -> None:
    StateTaskServiceCallback._eval_wait_for_task_token = _watching_the_execution(  # type: ignore[method-assign]
        StateTaskServiceCallback._eval_wait_for_task_token
    )
    ExecutionState._evaluate_with_timeout = _ending_quietly_when_stopped(  # type: ignore[method-assign]
        ExecutionState._evaluate_with_timeout
    )
    Execution.stop = _aborting_at_once(Execution.stop)  # type: ignore[method-assign]
    StateTaskServiceCallback._eval_sync = _job_only(StateTaskServiceCallback._eval_sync)  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication._reflect_execution_status = _keeping_aborted(  # type: ignore[method-assign]
        BaseExecutionWorkerCommunication._reflect_execution_status
    )


@functools.cache
def install(endpoint: str | None) -> None:
    """Make the interpreter wait on the simulated clock and reach `endpoint`, and make
    every clock in the process read the simulated time (once)."""
    sim_time.install()
    _install_stopping()
    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
    CallbackEndpoint.wait = _wait_for_token  # type: ignore[method-assign]
    overrides = StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    overrides["elasticloadbalancingv2"] = "elbv2"
    if endpoint:
        # The interpreter's SDK clients use http://localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = endpoint.rsplit(":", 1)[1]
