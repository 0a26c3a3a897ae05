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

Also here, because the interpreter needs it to call AWS the way Step Functions does:
its AWS SDK integrations reach the embedded endpoint, and `elasticloadbalancingv2`
(Step Functions' name) maps to boto3's `elbv2`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from moto.elbv2.models import elbv2_backends
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (  # noqa: E501
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

from local import application, eventbridge, instance_refresh_clock

ACCOUNT = "123456789012"
MINUTE = 60.0
LONGEST_WAIT = 7 * 24 * 3600.0  # a token wait without a timeout gives up after a week
_lock = threading.RLock()
_elapsed = {"seconds": 0.0}
_watchers: list[Callable[[], None]] = []


def watch(watcher: Callable[[], None]) -> Callable[[], None]:
    """Call `watcher` after every simulated minute and every Lambda invocation (tests use
    it to check an invariant all through a release); returns what stops it."""
    _watchers.append(watcher)
    return lambda: _watchers.remove(watcher)


def notify_watchers() -> None:
    for watcher in list(_watchers):
        watcher()


def elapsed() -> float:
    """Simulated seconds passed in this process."""
    return _elapsed["seconds"]


def advance(seconds: float = MINUTE) -> None:
    """Let `seconds` of simulated time pass, a minute at a time (at least one minute)."""
    for _ in range(application.minutes(seconds)):
        with _lock:
            instance_refresh_clock.advance(MINUTE)
            for region, backend in list(elbv2_backends[ACCOUNT].items()):
                if backend.load_balancers:
                    application.advance(ACCOUNT, region)
            _elapsed["seconds"] += MINUTE
            notify_watchers()
        eventbridge.drain()


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
    limit = LONGEST_WAIT if timeout is None else float(timeout)
    waited = 0.0
    eventbridge.drain()
    while not self._notify_event.is_set() and waited < limit:
        step = min(MINUTE, limit - waited)
        advance(step)
        waited += step
    return self._outcome


@functools.cache
def install(endpoint: str | None) -> None:
    """Make the interpreter wait on the simulated clock and reach `endpoint` (once)."""
    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
    CallbackEndpoint.wait = _wait_for_token  # type: ignore[method-assign]
    overrides = StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    overrides["elasticloadbalancingv2"] = "elbv2"
    if endpoint:
        # The interpreter's SDK clients use http://localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = endpoint.rsplit(":", 1)[1]
