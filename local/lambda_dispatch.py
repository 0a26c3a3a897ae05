"""Lambda in the embedded AWS: phoenix's handlers run in this process.

moto runs function code in Docker, which is not here. A function whose handler is one
of phoenix's (`phoenix.<component>.<runtime|handlers>...lambda_handler`, the code the Lambda factory
packages) is instead called in-process, as the Lambda runtime would call it:
- with the function's environment variables and the runtime's own (AWS_REGION, the
  function name, fake credentials, the embedded endpoint), seen by the call's thread
  only, for the call's duration,
- in an execution environment of the function's own: an idle one, or a new one (the
  handler's module imported afresh) when every other is busy, so invocations run
  concurrently as Lambda runs them, each environment reused by later invocations and
  none shared between functions; an environment whose process died is not reused,
- with a context object carrying the function's name, ARN, memory and remaining time,
- answered at the function's timeout as Lambda answers a timeout (a Python thread cannot
  be killed: the handler runs on in the background and its result is discarded),
- with an exception answered as Lambda answers it: FunctionError `Unhandled` and a
  payload of errorMessage, errorType, requestId and stackTrace,
- only if the function's deployed code holds the handler's module: otherwise the call
  fails as Lambda's Python runtime fails it, with `Runtime.ImportModuleError` ("Unable
  to import module"; Lambda developer guide, "Troubleshoot invocation issues in
  Lambda"), so a package that ships without its handler fails here as on AWS.
- an asynchronous invocation (InvocationType Event, as EventBridge invokes) whose
  handler fails is retried (twice, or the function's MaximumRetryAttempts), one and then
  two simulated minutes later, with the same request id ("Error handling and automatic
  retries in Lambda"); then its record goes to the function's on-failure destination,
  an SQS queue, sent with the function's role (SendMessage, and GenerateDataKey on the
  queue's key), in the invocation record's format ("Capturing records of Lambda
  asynchronous invocations": version, timestamp, requestContext with condition
  RetriesExhausted and approximateInvokeCount, requestPayload, responseContext,
  responsePayload). Without a destination, or when the role may not send, the event is
  discarded and recorded in `lost`. Other destination types and dead-letter queues
  (DeadLetterConfig) are not emulated.
Other functions (CDK's own providers) keep moto's behaviour.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda.models import LambdaFunction

from local import api_calls, clock, destinations, faults, sim_time
from local.cloudformation import embedded_endpoint
from local.lambda_environments import (
    environment_for,
    function_environment,
    idle_again,
)

HANDLER_PACKAGE = "phoenix."


@dataclass
class LambdaContext:
    """The context object the Python runtime passes to a handler (the attributes used)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_seconds - (time.monotonic() - self._started)
        return max(0, int(left * 1000))


@dataclass(frozen=True)
class Invocation:
    payload: str
    errored: bool


def is_phoenix_handler(handler: str | None) -> bool:
    return bool(handler) and str(handler).startswith(HANDLER_PACKAGE)


def invoke_handler(
    handler: str, event: Any, context: LambdaContext, variables: dict[str, str]
) -> Invocation:
    """Call `module.function` as the Lambda Python runtime would, with its timeout."""
    module_name, _, function_name = handler.rpartition(".")
    outcome: dict[str, Any] = {}

    def run() -> None:
        arn = context.invoked_function_arn
        module = None
        try:
            with function_environment(variables), api_calls.invocation(event):
                module = environment_for(module_name, arn)
                outcome["result"] = getattr(module, function_name)(event, context)
        except Exception as error:
            outcome["error"] = error
            outcome["trace"] = traceback.format_exception(error)
        except faults.ProcessDied:
            outcome["died"] = True  # its environment is gone: not idle again
            return
        if module is not None:
            idle_again(module_name, arn, module)

    worker = threading.Thread(target=run, daemon=True, name=f"lambda:{context.function_name}")
    worker.start()
    worker.join(context.timeout_seconds)
    if worker.is_alive():
        message = (
            f"{context.aws_request_id} Task timed out after {context.timeout_seconds:.2f} seconds"
        )
        return Invocation(json.dumps({"errorMessage": message}), errored=True)
    if "died" in outcome:
        # The process ended under the handler: Lambda answers with the runtime's exit
        # (Lambda developer guide, "Troubleshoot invocation issues": Runtime.ExitError,
        # "Runtime exited with error: signal: killed").
        died = {
            "errorType": "Runtime.ExitError",
            "errorMessage": (
                f"RequestId: {context.aws_request_id} Error: Runtime exited with error: "
                "signal: killed"
            ),
        }
        return Invocation(json.dumps(died), errored=True)
    if "error" in outcome:
        error = outcome["error"]
        payload = {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": context.aws_request_id,
            "stackTrace": [line.rstrip() for line in outcome["trace"][1:]],
        }
        return Invocation(json.dumps(payload), errored=True)
    return Invocation(json.dumps(outcome.get("result")), errored=False)


# The files of each deployed package, by its SHA-256 (a code update changes it): every
# invocation checks its handler is there, and a package's zip is read once.
_packaged: dict[str, frozenset[str]] = {}


def _files_of(function: LambdaFunction) -> frozenset[str]:
    key = str(function.code_sha_256)
    if key not in _packaged:
        try:
            with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as package:
                _packaged[key] = frozenset(package.namelist())
        except zipfile.BadZipFile:
            _packaged[key] = frozenset()
    return _packaged[key]


def _missing_module(handler: str, packaged: frozenset[str]) -> Invocation | None:
    """Lambda's answer when the deployed package lacks the handler's module, else None."""
    module = handler.rpartition(".")[0]
    if module.replace(".", "/") + ".py" in packaged:
        return None
    payload = {
        "errorMessage": f"Unable to import module '{module}': No module named '{module}'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": str(uuid.uuid4()),
        "stackTrace": [],
    }
    return Invocation(json.dumps(payload), errored=True)


def _context_for(function: LambdaFunction) -> LambdaContext:
    return LambdaContext(
        function_name=function.function_name,
        invoked_function_arn=function.function_arn,
        memory_limit_in_mb=int(function.memory_size or 128),
        timeout_seconds=float(function.timeout or 3),
        log_group_name=f"/aws/lambda/{function.function_name}",
    )


def runtime_variables(function: LambdaFunction) -> dict[str, str]:
    """What the Lambda runtime puts in every function's environment (the ones handlers
    use), with the embedded AWS's fake credentials and, when a server runs, its endpoint
    (so the handler's boto3 clients talk to it, not to AWS)."""
    region = function.function_arn.split(":")[3]
    variables = {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size or 128),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.function_name}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # No X-Ray daemon here: Powertools Tracer records nothing.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    endpoint = embedded_endpoint()
    if endpoint:
        variables["AWS_ENDPOINT_URL"] = endpoint
    return variables


# Lambda developer guide, "Error handling and automatic retries in Lambda" /
# "Asynchronous invocation": a function error in an asynchronous invocation is retried
# twice, one minute and then two minutes later, with the same request id; after the last
# attempt the event goes to the function's on-failure destination or dead-letter queue,
# or is discarded.
ASYNC_RETRY_DELAYS = (60.0, 120.0)
logger = logging.getLogger("phoenix.local.lambda")
# What asynchronous invocations ran out of attempts: (function name, event), newest last.
lost: list[tuple[str, Any]] = []


def _asynchronous(request_headers: Any) -> bool:
    headers = {str(k).lower(): str(v) for k, v in dict(request_headers or {}).items()}
    return headers.get("x-amz-invocation-type", "").lower() == "event"


def _retries(function: LambdaFunction) -> int:
    for config in function.event_invoke_config:
        if "MaximumRetryAttempts" in config.config:
            return int(config.config["MaximumRetryAttempts"])
    return len(ASYNC_RETRY_DELAYS)


def _retry_later(
    function: LambdaFunction, event: Any, variables: dict[str, str], request_id: str, attempt: int
) -> None:
    def retry() -> None:
        context = _context_for(function)
        context.aws_request_id = request_id
        outcome = invoke_handler(str(function.handler), event, context, variables)
        clock.notify_watchers()
        if not outcome.errored:
            return
        if attempt < _retries(function):
            _retry_later(function, event, variables, request_id, attempt + 1)
            return
        _exhausted(function, event, request_id, outcome, attempt + 1)

    clock.at(ASYNC_RETRY_DELAYS[attempt - 1], retry)


def _exhausted(
    function: LambdaFunction, event: Any, request_id: str, outcome: Invocation, invoked: int
) -> None:
    """The last attempt failed: the record to the on-failure destination, or lost."""
    record = {
        "version": "1.0",
        "timestamp": sim_time.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function.function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": invoked,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": json.loads(outcome.payload),
    }
    if destinations.send_on_failure(function, record):
        return
    lost.append((function.function_name, event))
    logger.warning(
        "asynchronous invocation %s of %s failed %d times; event discarded",
        request_id,
        function.function_name,
        invoked,
    )


@functools.cache
def install() -> None:
    """Route invocations of phoenix's handlers to this process (once per process)."""
    LambdaFunction.invoke = _dispatching(LambdaFunction.invoke)  # type: ignore[method-assign]


def _dispatching(invoke: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(invoke)
    def dispatched(
        self: LambdaFunction, body: str, request_headers: Any, response_headers: Any
    ) -> str | bytes:
        if not is_phoenix_handler(self.handler):
            result: str | bytes = invoke(self, body, request_headers, response_headers)
            return result
        event = json.loads(body) if body else {}
        variables = {**runtime_variables(self), **(self.environment_vars or {})}
        context = _context_for(self)
        missing = _missing_module(str(self.handler), _files_of(self))
        outcome = missing or invoke_handler(str(self.handler), event, context, variables)
        if outcome.errored and _asynchronous(request_headers):
            if _retries(self):
                _retry_later(self, event, variables, context.aws_request_id, attempt=1)
            else:
                _exhausted(self, event, context.aws_request_id, outcome, 1)
        clock.notify_watchers()
        if outcome.errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return outcome.payload.encode("utf-8")

    return dispatched
