"""Lambda's execution environments in the embedded AWS (local/lambda_dispatch.py runs
phoenix's handlers in this process):
- each running handler sees its function's environment variables over the process's,
  in its own thread only, for the call's duration;
- each invocation runs in an execution environment of its function's own: an idle one,
  or a new one (the handler's module imported afresh, with the function's variables)
  when every other is busy, as Lambda scales a function out to one environment per
  concurrent invocation and reuses idle ones ("Lambda execution environments",
  "Understanding Lambda function scaling").
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Each running handler's variables, by its thread: os.environ shows them to that thread
# only. Written by hand: the standard library has no per-thread environment, and
# mutating the process's environment for a call raced with every other thread reading
# it (botocore iterates os.environ when it makes a client: a key removed meanwhile is a
# KeyError, and another thread saw the function's AWS_REGION).
_overlays: dict[int, dict[str, str | None]] = {}


class _ThreadEnviron(os._Environ[str]):
    """os.environ with each handler thread's own variables over the process's."""

    def _overlay(self) -> dict[str, str | None] | None:
        return _overlays.get(threading.get_ident())

    def __getitem__(self, key: str) -> str:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return str(super().__getitem__(key))

    def __setitem__(self, key: str, value: str) -> None:
        overlay = self._overlay()
        if overlay is None:
            super().__setitem__(key, value)
        else:
            overlay[key] = str(value)

    def __delitem__(self, key: str) -> None:
        overlay = self._overlay()
        if overlay is None:
            super().__delitem__(key)
            return
        self[key]  # KeyError when absent, as os.environ raises
        overlay[key] = None

    def __iter__(self) -> Iterator[str]:
        overlay = self._overlay()
        base = list(super().__iter__())
        if overlay is None:
            yield from base
            return
        yield from (key for key in base if key not in overlay)
        yield from (key for key, value in list(overlay.items()) if value is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)


def _thread_environ() -> None:
    if not isinstance(os.environ, _ThreadEnviron):
        os.environ.__class__ = _ThreadEnviron


@contextmanager
def function_environment(variables: dict[str, str]) -> Iterator[None]:
    """The function's variables in os.environ, for the calling thread only, for one call."""
    _thread_environ()
    _overlays[threading.get_ident()] = dict(variables)
    try:
        yield
    finally:
        del _overlays[threading.get_ident()]


# Each function's execution environments that are idle, by (handler module, function
# ARN): an invocation takes one, or starts a new one when all are busy (Lambda scales a
# function out to one environment per concurrent invocation, and reuses an idle one:
# "Lambda execution environments", "Understanding Lambda function scaling").
_idle: dict[tuple[str, str], list[Any]] = {}
_idle_lock = threading.Lock()


def environment_for(module_name: str, function_arn: str) -> Any:
    """An idle execution environment's handler module, or a new one: the module imported
    afresh with this function's environment (module-level objects, Powertools Logger and
    Metrics, read their settings at import), apart from every other environment's. A
    module that is not from a file (a test's) is the one imported."""
    with _idle_lock:
        idle = _idle.get((module_name, function_arn))
        if idle:
            return idle.pop()
    given = sys.modules.get(module_name)
    if given is not None and getattr(given, "__spec__", None) is None:
        return given  # a module a test made, not from a file
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None or spec.loader is None:
        return importlib.import_module(module_name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def idle_again(module_name: str, function_arn: str, module: Any) -> None:
    with _idle_lock:
        _idle.setdefault((module_name, function_arn), []).append(module)


def forget_environments() -> None:
    """Drop every idle execution environment (a new embedded AWS starts without any)."""
    with _idle_lock:
        _idle.clear()
