"""Counting the AWS API calls phoenix's handlers make in the embedded AWS.

Handlers run in this process (lambda_dispatch), each invocation in a thread named
`lambda:<function name>`, and make their calls with boto3's default session; a
botocore `before-call` hook on that session sees every call with the thread that made
it. Calls are named as IAM names them (`elasticloadbalancing:ModifyListener`).

The same hook holds a handler just before one of its calls while something else runs
(`between`): how the tests stage a request that arrives while a step is half done.
lambda_dispatch tells it which invocation a thread runs (`invocation`), as the Lambda
runtime knows its event.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

# botocore's signing name where it differs from the IAM service prefix
_IAM_PREFIX = {"monitoring": "cloudwatch"}
# an operation authorized by an action of another name (Service Authorization Reference)
_IAM_ACTION = {"lambda:Invoke": "lambda:InvokeFunction"}
LAMBDA_THREAD = "lambda:"


# The event of the invocation a handler thread runs (lambda_dispatch sets it).
_invocation = threading.local()


def current_function() -> str | None:
    """The function whose handler runs in this thread (lambda_dispatch names the thread
    after it), or None."""
    name = threading.current_thread().name
    return name.removeprefix(LAMBDA_THREAD) if name.startswith(LAMBDA_THREAD) else None


def current_event() -> Any:
    """The event of the invocation this handler thread runs, or None."""
    return getattr(_invocation, "event", None)


@contextmanager
def invocation(event: Any) -> Iterator[None]:
    """This thread runs a handler on `event` while the block runs."""
    _invocation.event = event
    try:
        yield
    finally:
        _invocation.event = None


def iam_action(model: Any) -> str:
    """`service:Operation` as IAM writes it, from a botocore OperationModel."""
    action = api_action(model)
    return _IAM_ACTION.get(action, action)


def api_action(model: Any) -> str:
    """`service:Operation` with the operation's own name (`lambda:Invoke`)."""
    signing = model.service_model.signing_name
    return f"{_IAM_PREFIX.get(signing, signing)}:{model.name}"


class CallLog:
    """Calls made from Lambda handler threads: (function name, IAM action) -> count."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        # every call in order: (when, function, action)
        self.sequence: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        function = current_function()
        if function is None:
            return
        action = iam_action(model)
        with self._lock:
            self.calls[(function, action)] += 1
            self.sequence.append((time.perf_counter(), function, action))

    def by_function(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for function, action in self.calls:
            found.setdefault(function, set()).add(action)
        return found

    def total(self) -> int:
        return sum(self.calls.values())

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.sequence.clear()


_recording: list[CallLog] = []
_recording_lock = threading.Lock()


def _record(model: Any, **_: Any) -> None:
    for log in list(_recording):
        log(model)
    for between in list(_between):
        between.meet(model)


@dataclass
class Between:
    """`run` once, just before the `nth` call of `action` by a handler whose invocation
    `during` accepts (given the function's name and its event): in a thread of its own,
    which the handler waits for, as if it happened while the call was on its way. What
    `run` raised is kept in `error`; `calls` counts the calls met."""

    action: str
    during: Callable[[str, Any], bool]
    run: Callable[[], None]
    nth: int = 1
    calls: int = 0
    ran: bool = False
    error: BaseException | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def meet(self, model: Any) -> None:
        function = current_function()
        if function is None or iam_action(model) != self.action:
            return
        if not self.during(function, current_event()):
            return
        with self._lock:
            self.calls += 1
            if self.ran or self.calls != self.nth:
                return
            self.ran = True
        side = threading.Thread(target=self._run, name="between", daemon=True)
        side.start()
        side.join()

    def _run(self) -> None:
        try:
            self.run()
        except Exception as error:
            self.error = error


_between: list[Between] = []


@contextmanager
def between(interleaving: Between) -> Iterator[Between]:
    """`interleaving` armed while the block runs."""
    install()
    with _recording_lock:
        _between.append(interleaving)
    try:
        yield interleaving
    finally:
        with _recording_lock:
            _between.remove(interleaving)


def install() -> None:
    """The hook, on boto3's default session, once, before any client is made: a client
    keeps the hooks it was made with (and phoenix's handlers keep their clients)."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-call", _record, unique_id="phoenix-call-log")


@contextmanager
def recording() -> Iterator[CallLog]:
    """Record the handlers' calls while the block runs."""
    install()
    log = CallLog()
    with _recording_lock:
        _recording.append(log)
    try:
        yield log
    finally:
        with _recording_lock:
            _recording.remove(log)
