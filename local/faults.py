"""Faults for rehearsals and tests: AWS answering a handler's call with an error.

The handlers run in this process with boto3's default session (lambda_dispatch); a
`before-send` hook on that session answers the next `times` attempts of one operation
with the error AWS would send, before anything reaches the embedded endpoint. botocore's
retry logic sees a real error response, so a handler's retries (standard mode) are
exercised as they would be against AWS.
"""

from __future__ import annotations

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
    served: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if not threading.current_thread().name.startswith(LAMBDA_THREAD):
            return None  # only phoenix's handlers meet the fault, not the interpreter
        with self._lock:
            if self.served >= self.times:
                return None
            self.served += 1
        body = _QUERY_ERROR.format(code=self.code, message="Rate exceeded").encode()
        headers = HTTPHeaders.from_dict({"Content-Type": "text/xml"})
        return AWSResponse(request.url, 400, headers, _Raw(body))


@contextmanager
def failing(
    service: str, operation: str, code: str = "Throttling", times: int = 1
) -> Iterator[Fault]:
    """The next `times` attempts of `service`.`operation` (botocore's names, for example
    `elasticloadbalancing`, `ModifyListener`) by the handlers get `code` (query-protocol
    services: ELBv2, Auto Scaling, EC2's XML errors differ and are not served here)."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    fault = Fault(operation, code, times)
    event = f"before-send.{service}.{operation}"
    # A before-send handler answers with a response (botocore's stubs say handlers
    # return None).
    hook: Callable[..., Any] = fault
    session.events.register(event, hook, unique_id=f"phoenix-fault-{operation}")
    try:
        yield fault
    finally:
        session.events.unregister(event, unique_id=f"phoenix-fault-{operation}")
