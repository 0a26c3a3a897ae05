"""Event patterns on fields of objects inside arrays, as EventBridge matches them.

An event's value may be an array of objects: Inspector's `detail.resources`, Security
Hub's `detail.findings`. EventBridge matches a pattern's field below such an array
against that field of every object in it, the array's values taken together: "If the
value in the event is an array, then the pattern matches if the intersection of the
pattern array and the event array is non-empty" (EventBridge user guide, "Arrays in
Amazon EventBridge event patterns"); its Security Hub example matches
`detail.findings.Severity.Label` in the array `detail.findings`. moto 5.2 flattens
nested objects only, so the field below an array is never found and such a rule never
matches. Here an array of objects is flattened too: each field path below it holds the
values of every object.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.events.models import EventPattern


def _flatten(node: Any, prefix: str = "", result: dict[str, Any] | None = None) -> dict[str, Any]:
    result = {} if result is None else result
    if not isinstance(node, dict):
        return result
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            _flatten(value, path, result)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            result[path] = value
            for item in value:
                for field, found in _flatten(item, path).items():
                    merged = result.setdefault(field, [])
                    merged.extend(found if isinstance(found, list) else [found])
        else:
            result[path] = value
    return result


@functools.cache
def install() -> None:
    EventPattern._flatten_dict = staticmethod(_flatten)  # type: ignore[method-assign]
