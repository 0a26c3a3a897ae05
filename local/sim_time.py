"""One "now" for the embedded AWS: real UTC time plus the simulated time passed.

In AWS every service and every Lambda function reads the same UTC time (the Lambda
execution environment's time zone is UTC and it "uses NTP to synchronize the system
clock": Lambda developer guide, "Defined runtime environment variables", TZ). So what
a handler computes from its clock agrees with the times the services stamp and select
by: an execution's startDate and `$$.Execution.StartTime` (Step Functions API reference,
DescribeExecution; developer guide, "Accessing execution data from the Context object"),
an alarm's StateUpdatedTimestamp (CloudWatch API reference, MetricAlarm), a datapoint's
Timestamp, which GetMetricData selects between StartTime and EndTime (CloudWatch API
reference, MetricDatum and GetMetricData), an instance refresh's StartTime and EndTime
(Auto Scaling API reference, InstanceRefresh).

In the embedded AWS the world moves on a simulated clock (local.clock: `advance`, Wait
states and token waits let minutes pass at once). Its one time is `now()`: real UTC now
plus the simulated seconds passed in this world, so it never goes backwards while the
world lasts and agrees with the real times stored before its first simulated minute.
Installed once per process (`install`, from local.clock.install), it is what these read:
- phoenix's handlers: `phoenix.kernel.clock.now`, the one clock they use, also in a
  module that imported `now` by name before the install;
- moto: `moto.core.utils.utcnow` (naive UTC, moto's convention) in that module, whose
  `unix_time` and `iso_8601_datetime_*` helpers call it (EventBridge event times, ELBv2
  creation times), and wherever it was imported by name: CloudWatch (alarm state and
  configuration timestamps, datapoints published without a Timestamp), Auto Scaling
  (activities), moto's own Step Functions model, and local.application (the model's
  datapoints) and local.instance_refresh (a refresh's StartTime, a dataclass field that
  defaults to it, and EndTime);
- moto's Step Functions interpreter, which calls `datetime.datetime.now` itself rather
  than utcnow: execution start and stop dates (and so `$$.Execution.StartTime`),
  `$$.State.EnteredTime`, history event timestamps, and a Wait state's `Timestamp`
  (an ISO 8601 time in UTC, Amazon States Language, "Wait State").
A world ends when moto forgets its state (a reset: `mock_aws`, a new `EmbeddedAws`) or
when its server stops: the simulated time passed in it goes with it, so what runs after
it in the same process (unit tests of the handlers) reads real time again.
`local.clock.elapsed()` still counts every simulated second of the process.
"""

from __future__ import annotations

import dataclasses
import datetime as datetime_module
import functools
import importlib
import sys
import threading
import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import moto.core.utils
from moto.core.base_backend import BackendDict
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

import phoenix.kernel.clock

# The interpreter's modules that read `datetime.datetime.now` (moto 5.2).
INTERPRETER_MODULES = (
    "moto.stepfunctions.parser.models",  # StartExecution: startDate, $$.Execution.StartTime
    "moto.stepfunctions.parser.backend.execution",  # an ended execution's stopDate
    "moto.stepfunctions.parser.backend.state_machine",  # a state machine's creationDate
    "moto.stepfunctions.parser.asl.component.state.state",  # $$.State.EnteredTime
    "moto.stepfunctions.parser.asl.eval.event.event_manager",  # history event timestamps
    "moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp",
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record",
)

_passed = {"seconds": 0.0}
_lock = threading.Lock()


def offset() -> timedelta:
    """The simulated time passed in this world."""
    return timedelta(seconds=_passed["seconds"])


def passed(seconds: float) -> None:
    """`seconds` of simulated time have passed (local.clock.advance says so)."""
    with _lock:
        _passed["seconds"] += seconds


_on_forget: list[Callable[[], None]] = []


def on_forget(action: Callable[[], None]) -> None:
    """Call `action` whenever a world ends (what was scheduled in it is dropped)."""
    _on_forget.append(action)


def forget() -> None:
    """The world ended: what comes next starts from real time."""
    with _lock:
        _passed["seconds"] = 0.0
    for action in list(_on_forget):
        action()


def now() -> datetime:
    """The current time, aware, in UTC: real time plus the simulated time passed."""
    return datetime.now(UTC) + offset()


def utcnow() -> datetime:
    """`now()` as moto's utcnow gives it: naive, in UTC."""
    return now().replace(tzinfo=None)


class SimulatedDatetime(datetime):
    """`datetime.datetime` for moto's interpreter: `now` is the simulated one. Without a
    zone it is naive UTC (the interpreter compares it with Wait timestamps, UTC)."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        moment = datetime.now(tz or UTC) + offset()
        return moment if tz else moment.replace(tzinfo=None)


def _datetime_module() -> types.ModuleType:
    shim = types.ModuleType("datetime", "The datetime module with the simulated now.")
    shim.__dict__.update({k: v for k, v in vars(datetime_module).items() if not k.startswith("__")})
    setattr(shim, "datetime", SimulatedDatetime)  # noqa: B010
    return shim


def _replace_default_factories(cls: type, swaps: dict[int, Callable[..., Any]]) -> None:
    """A dataclass field `field(default_factory=f)` keeps `f` in the field and in the
    generated __init__'s closure: both are pointed at the replacement."""
    fields: dict[str, dataclasses.Field[Any]] = cls.__dict__.get("__dataclass_fields__", {})
    if not any(id(f.default_factory) in swaps for f in fields.values()):
        return
    for field in fields.values():
        if id(field.default_factory) in swaps:
            field.default_factory = swaps[id(field.default_factory)]
    init = cls.__dict__.get("__init__")
    for cell in getattr(init, "__closure__", None) or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if id(contents) in swaps:
            cell.cell_contents = swaps[id(contents)]


def _replace_everywhere(replacements: dict[Callable[..., Any], Callable[..., Any]]) -> None:
    """Every module attribute that is one of the originals (`from x import f` made one)
    becomes its replacement, and so does a dataclass field's default factory."""
    originals = {id(original): original for original in replacements}
    swaps = {id(original): replacement for original, replacement in replacements.items()}
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        name = namespace.get("__name__")
        for attribute, value in list(namespace.items()):
            if id(value) in originals and value is originals[id(value)]:
                namespace[attribute] = swaps[id(value)]
            elif isinstance(value, type) and value.__dict__.get("__module__") == name:
                _replace_default_factories(value, swaps)


@functools.cache
def install() -> None:
    """Make phoenix's clock, moto and moto's interpreter read `now()` (once)."""
    _replace_everywhere({phoenix.kernel.clock.now: now, moto.core.utils.utcnow: utcnow})
    shim = _datetime_module()
    for name in INTERPRETER_MODULES:
        module = importlib.import_module(name)
        if module.__dict__.get("datetime") is not datetime_module:
            raise RuntimeError(f"{name} no longer reads the time as moto 5.2 did")
        setattr(module, "datetime", shim)  # noqa: B010

    reset = BackendDict.__dict__["reset"].__func__

    def forgetting(cls: type[BackendDict[Any]]) -> None:
        reset(cls)
        forget()

    setattr(BackendDict, "reset", classmethod(forgetting))  # noqa: B010
    stop = ThreadedMotoServer.stop

    @functools.wraps(stop)
    def stopping(self: ThreadedMotoServer) -> None:
        stop(self)
        forget()

    setattr(ThreadedMotoServer, "stop", stopping)  # noqa: B010
