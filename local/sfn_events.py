"""Step Functions in the embedded AWS: an execution's end becomes an EventBridge event.

Step Functions sends `Step Functions Execution Status Change` (source `aws.states`) to
the account's default event bus whenever an execution of a Standard workflow changes
status (Step Functions developer guide, "EventBridge (CloudWatch Events) for Step
Functions execution status changes"; EventBridge events reference, "AWS Step Functions
events"; Express workflows send none). moto sends nothing. Here every Standard
execution that ends, whatever ends it (its last state, a Fail state, an error nothing
caught, its TimeoutSeconds, StopExecution), is published once, with its status
SUCCEEDED, FAILED, TIMED_OUT or ABORTED, in the shape of AWS's sample events:
`resources` holds the execution ARN and `detail`:
- `executionArn`, `stateMachineArn`, `name`, `status`;
- `startDate` and `stopDate`: milliseconds since the epoch;
- `input` (the execution's input as JSON text) and `inputDetails` (`{"included": true}`);
- `output` and `outputDetails`: the output as JSON text and `{"included": true}` when
  SUCCEEDED, null otherwise;
- `error` and `cause`: what failed the execution, or what StopExecution was given; null
  when there is none (moto's StopExecution drops what it is given: null here).
RUNNING (an execution's start) is not sent: nothing in phoenix listens for it.

An execution is published when StopExecution returns if it is ABORTED by then
(local.clock makes it so at once), and otherwise when its interpreter's worker ends.
"""

from __future__ import annotations

import functools
import json
import threading
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.events.models import events_backends
from moto.stepfunctions.parser.api import ExecutionStatus, StateMachineType
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import (
    BaseExecutionWorkerCommunication,
    Execution,
)

DETAIL_TYPE = "Step Functions Execution Status Change"
ENDED = {
    ExecutionStatus.SUCCEEDED,
    ExecutionStatus.FAILED,
    ExecutionStatus.TIMED_OUT,
    ExecutionStatus.ABORTED,
}
# The executions already published (each ends once): StopExecution (a server thread) and
# the interpreter's worker may both see the end.
_published: weakref.WeakSet[Execution] = weakref.WeakSet()
_publishing = threading.Lock()


def _millis(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def _stopped_with(execution: Execution) -> tuple[str | None, str | None]:
    """The error and cause StopExecution was given (moto keeps them on the interpreter)."""
    worker = execution.exec_worker
    state = worker.env.program_state() if worker is not None and worker.env else None
    if isinstance(state, ProgramStopped):
        return state.error, state.cause
    return None, None


def status_change_event(execution: Execution) -> dict[str, Any]:
    """The PutEvents entry Step Functions would send for `execution`'s end."""
    status = ExecutionStatus(execution.exec_status)
    error, cause = execution.error, execution.cause
    if status == ExecutionStatus.ABORTED:
        error, cause = _stopped_with(execution)
    succeeded = status == ExecutionStatus.SUCCEEDED
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.to_execution_list_item()["stateMachineArn"],
        "name": execution.name,
        "status": status.value,
        "startDate": _millis(execution.start_date),
        "stopDate": _millis(execution.stop_date),
        "input": json.dumps(execution.input_data, separators=(",", ":")),
        "inputDetails": {"included": True},
        "output": json.dumps(execution.output, separators=(",", ":")) if succeeded else None,
        "outputDetails": {"included": True} if succeeded else None,
        "error": error or None,
        "cause": cause or None,
    }
    return {
        "Source": "aws.states",
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail),
        "Resources": [execution.exec_arn],
        "EventBusName": "default",
    }


def publish_if_ended(execution: Execution) -> None:
    """Put the status change event of a Standard execution that has ended, once."""
    if execution.sm_type != StateMachineType.STANDARD:
        return
    with _publishing:
        if execution.exec_status not in ENDED or execution in _published:
            return
        _published.add(execution)
    backend = events_backends[execution.account_id][execution.region_name]
    backend.put_events([status_change_event(execution)])


@functools.cache
def install() -> None:
    """Publish every execution's end to EventBridge (once per process). Installed after
    local.clock, so StopExecution is seen with the status local.clock gives it."""
    Execution.stop = _publishing_stop(Execution.stop)  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication.terminated = _publishing_end(  # type: ignore[method-assign]
        BaseExecutionWorkerCommunication.terminated
    )


def _publishing_stop(stop: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(stop)
    def stop_execution(
        self: Execution, stop_date: datetime, error: str | None, cause: str | None
    ) -> None:
        stop(self, stop_date=stop_date, error=error, cause=cause)
        publish_if_ended(self)

    return stop_execution


def _publishing_end(terminated: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(terminated)
    def ended(self: BaseExecutionWorkerCommunication) -> None:
        terminated(self)
        publish_if_ended(self.execution)

    return ended
