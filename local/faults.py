"""Faults for rehearsals and tests: AWS answering a handler's call with an error.

The handlers run in this process with boto3's default session (lambda_dispatch); a
`before-send` hook on that session answers the next `times` attempts of one operation
with the error AWS would send, before anything reaches the embedded endpoint. botocore's
retry logic sees a real error response, so a handler's retries (standard mode) are
exercised as they would be against AWS.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from local.api_calls import LAMBDA_THREAD

_QUERY_ERROR = (
    "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
    "<Message>{message}</Message></Error><RequestId>phoenix-fault</RequestId></ErrorResponse>"
)


class _Raw:
    """The minimal raw stream AWSResponse reads its body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class Fault:
    operation: str
    code: str
    times: int
    invoking: str | None = None
    served: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        by_handler = threading.current_thread().name.startswith(LAMBDA_THREAD)
        if self.invoking is None and not by_handler:
            return None  # only phoenix's handlers meet the fault, not the interpreter
        if self.invoking is not None and (by_handler or self.invoking not in request.url):
            return None  # only the invocations of that one function
        with self._lock:
            if self.served >= self.times:
                return None
            self.served += 1
        if self.invoking is not None:
            # Lambda's REST-JSON error: the code in x-amzn-ErrorType, 429 when throttled.
            status = 429 if self.code == "TooManyRequestsException" else 500
            body = json.dumps({"Type": "User", "message": "Rate exceeded"}).encode()
            headers = HTTPHeaders.from_dict(
                {
                    "Content-Type": "application/json",
                    "x-amzn-ErrorType": self.code,
                    "x-amzn-RequestId": "phoenix-fault",
                }
            )
            return AWSResponse(request.url, status, headers, _Raw(body))
        body = _QUERY_ERROR.format(code=self.code, message="Rate exceeded").encode()
        headers = HTTPHeaders.from_dict({"Content-Type": "text/xml"})
        return AWSResponse(request.url, 400, headers, _Raw(body))


@contextmanager
def failing(
    service: str,
    operation: str,
    code: str = "Throttling",
    times: int = 1,
    *,
    invoking: str | None = None,
) -> Iterator[Fault]:
    """The next `times` attempts of `service`.`operation` (botocore's names, for example
    `elasticloadbalancing`, `ModifyListener`) by the handlers get `code` (query-protocol
    services: ELBv2, Auto Scaling, EC2's XML errors differ and are not served here).

    With `invoking` (a function name), the fault meets instead the Lambda `Invoke` calls
    of that function by anything but a handler (the state machine's Lambda tasks), answered
    as Lambda answers: `failing("lambda", "Invoke", "TooManyRequestsException",
    invoking=name)`."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    fault = Fault(operation, code, times, invoking)
    event = f"before-send.{service}.{operation}"
    # A before-send handler answers with a response (botocore's stubs say handlers
    # return None).
    hook: Callable[..., Any] = fault
    session.events.register(event, hook, unique_id=f"phoenix-fault-{operation}")
    try:
        yield fault
    finally:
        session.events.unregister(event, unique_id=f"phoenix-fault-{operation}")
