"""Faults for rehearsals and tests: AWS misbehaving under one of a handler's calls.

The handlers run in this process with boto3's default session (lambda_dispatch). Two
hooks on that session, installed once before any client is made (a client copies the
session's hooks when it is made, and phoenix's handlers keep their clients), serve the
faults armed at the time:
- `before-send` answers an attempt with the error AWS would send, in the protocol of the
  service, before anything reaches the embedded endpoint; or, for a timeout after the
  call took effect, sends the request, drops the answer and raises the read timeout the
  SDK would see. botocore's retry logic sees what it would see from AWS, so a handler's
  retries (standard mode) are exercised as they would be against AWS;
- `after-call` ends the function's process right after a call took effect
  (`ProcessDied`, which lambda_dispatch answers as Lambda answers a runtime that exited).

The kinds (`Kind`), as AWS documents them:
- THROTTLED: the call is throttled on every attempt the SDK makes (phoenix's clients
  make 6), so the handler sees the throttling error: `Throttling` (Auto Scaling, ELB),
  `RequestLimitExceeded` (EC2, HTTP 503), `ThrottlingException` (JSON services).
- SERVER_ERROR: an HTTP 500 (`InternalFailure`; EC2 `InternalError`; DynamoDB
  `InternalServerError`) on every attempt of the call.
- TIMED_OUT_AFTER_EFFECT: the first attempt reaches AWS and takes effect, its answer is
  lost (a read timeout); the SDK retries, and the retry meets the effect of the first.
- DIED_AFTER_EFFECT: the call succeeds and the function's process ends before the
  handler sees the answer (out of memory, killed): Lambda answers the invocation with
  `Runtime.ExitError`.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.endpoint
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from local.api_calls import api_action, current_function, iam_action

# The attempts a phoenix client makes of one call (phoenix.kernel.clients: standard
# retry mode with `max_attempts` 5, which botocore counts as retries after the first).
CLIENT_ATTEMPTS = 6

_QUERY_ERROR = (
    "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
    "<Message>{message}</Message></Error><RequestId>phoenix-fault</RequestId></ErrorResponse>"
)
_EC2_ERROR = (
    "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    "</Errors><RequestID>phoenix-fault</RequestID></Response>"
)


class Kind(enum.Enum):
    THROTTLED = "throttled"
    SERVER_ERROR = "server error (5xx)"
    TIMED_OUT_AFTER_EFFECT = "timed out after taking effect"
    DIED_AFTER_EFFECT = "process died after the call"


class ProcessDied(BaseException):
    """The function's process ended under the handler (a BaseException, so no handler's
    `except Exception` can catch it, as none could catch SIGKILL)."""


class _Raw:
    """The minimal raw stream AWSResponse reads its body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _codes(kind: Kind, signing: str, protocol: str) -> tuple[str, int]:
    """The error code and HTTP status AWS answers with for `kind`."""
    if kind is Kind.THROTTLED:
        if signing == "ec2":
            return "RequestLimitExceeded", 503
        if protocol in {"query"}:
            return "Throttling", 400
        return "ThrottlingException", 400
    if signing == "ec2":
        return "InternalError", 500
    if signing == "dynamodb":
        return "InternalServerError", 500
    return "InternalFailure", 500


def error_response(url: str, protocol: str, code: str, status: int) -> AWSResponse:
    """The response AWS sends for error `code` in `protocol`."""
    message = "Rate exceeded" if status != 500 else "We encountered an internal error"
    if protocol == "query":
        body = _QUERY_ERROR.format(code=code, message=message).encode()
        headers = {"Content-Type": "text/xml"}
    elif protocol == "ec2":
        body = _EC2_ERROR.format(code=code, message=message).encode()
        headers = {"Content-Type": "text/xml"}
    elif protocol == "rest-json":
        body = json.dumps({"Type": "User", "message": message}).encode()
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
    else:  # json
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1"}
    headers["x-amzn-RequestId"] = "phoenix-fault"
    return AWSResponse(url, status, HTTPHeaders.from_dict(headers), _Raw(body))


@dataclass
class Fault:
    """One fault armed at one action (`elasticloadbalancing:ModifyListener`), met by the
    calls of `function` (any phoenix function when None) or, with `invoking`, by the
    Lambda Invoke calls of that function by anything but a handler."""

    action: str
    kind: Kind = Kind.THROTTLED
    code: str | None = None
    times: int = 1
    function: str | None = None
    invoking: str | None = None
    served: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def matches(self, model: Any) -> bool:
        # armed by the operation's name or by the IAM action that authorizes it
        if self.action not in (api_action(model), iam_action(model)):
            return False
        function = current_function()
        if self.invoking is not None:
            return function is None
        return function is not None and self.function in (None, function)

    def claim(self) -> bool:
        with self._lock:
            if self.served >= self.times:
                return False
            self.served += 1
            return True


_armed: list[Fault] = []
_armed_lock = threading.Lock()


def _before_send(request: Any, operation_model: Any = None, **_: Any) -> AWSResponse | None:
    if operation_model is None or not _armed:
        return None
    with _armed_lock:
        candidates = [f for f in _armed if f.kind is not Kind.DIED_AFTER_EFFECT]
    for fault in candidates:
        if not fault.matches(operation_model):
            continue
        if fault.invoking is not None and fault.invoking not in request.url:
            continue
        if not fault.claim():
            continue
        service = operation_model.service_model
        if fault.kind is Kind.TIMED_OUT_AFTER_EFFECT:
            http = URLLib3Session()
            try:
                http.send(request)  # it reaches AWS and takes effect; the answer is lost
            finally:
                http.close()
            raise ReadTimeoutError(endpoint_url=request.url)
        code, status = _codes(fault.kind, service.signing_name, service.protocol)
        if fault.code is not None:
            code = fault.code
            status = 429 if code == "TooManyRequestsException" else status
        return error_response(request.url, service.protocol, code, status)
    return None


def _after_call(model: Any, http_response: Any = None, **_: Any) -> None:
    if not _armed or http_response is None or http_response.status_code >= 300:
        return
    with _armed_lock:
        candidates = [f for f in _armed if f.kind is Kind.DIED_AFTER_EFFECT]
    for fault in candidates:
        if fault.matches(model) and fault.claim():
            raise ProcessDied(f"died after {fault.action}")


# The operation model of the call in flight, per thread: `before-send` does not carry it,
# and every attempt of a call follows the call's `before-call`.
_current = threading.local()


def _remember(model: Any, **_: Any) -> None:
    _current.model = model


def _send(request: Any, **_: Any) -> AWSResponse | None:
    return _before_send(request, operation_model=getattr(_current, "model", None))


class _Backoff:
    """botocore's `time`, for its endpoint's sleep between attempts: a handler's backoff
    (at most seconds; standard mode's base of 1 s doubling to 20 s) passes no real time
    here, where simulated time moves a minute at a time; anything else sleeps as asked."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        if current_function() is None:
            time.sleep(seconds)


def install() -> None:
    """The hooks, on boto3's default session (once: registering twice under one id is a
    no-op). Before any client is made: a client keeps the hooks it was made with."""
    botocore.endpoint.time = _Backoff()  # type: ignore[attr-defined]
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-call", _remember, unique_id="phoenix-fault-model")
    # A before-send handler answers with a response (botocore's stubs say handlers
    # return None).
    sender: Callable[..., Any] = _send
    session.events.register("before-send", sender, unique_id="phoenix-fault-send")
    session.events.register("after-call", _after_call, unique_id="phoenix-fault-after")


@contextmanager
def armed(fault: Fault) -> Iterator[Fault]:
    """`fault` served while the block runs."""
    install()
    with _armed_lock:
        _armed.append(fault)
    try:
        yield fault
    finally:
        with _armed_lock:
            _armed.remove(fault)


@contextmanager
def failing(
    service: str,
    operation: str,
    code: str = "Throttling",
    times: int = 1,
    *,
    invoking: str | None = None,
) -> Iterator[Fault]:
    """The next `times` attempts of `service`.`operation` (botocore's service names, for
    example `elastic-load-balancing-v2`, `ModifyListener`) by the handlers get `code`.

    With `invoking` (a function name), the fault meets instead the Lambda `Invoke` calls
    of that function by anything but a handler (the state machine's Lambda tasks), answered
    as Lambda answers: `failing("lambda", "Invoke", "TooManyRequestsException",
    invoking=name)`."""
    prefix = {"elastic-load-balancing-v2": "elasticloadbalancing"}.get(service, service)
    kind = Kind.SERVER_ERROR if code.startswith("Internal") else Kind.THROTTLED
    fault = Fault(f"{prefix}:{operation}", kind, code=code, times=times, invoking=invoking)
    with armed(fault):
        yield fault
