"""How drift detection compares a resource's template properties with what its service
describes (local.stack_drift), from the type's CloudFormation resource provider schema (AWS's
schemas, as cfn-lint ships them):
- a property a dynamic reference sets is not compared ("CloudFormation doesn't support
  drift detection on dynamic references": CloudFormation user guide, "Get a plaintext
  value from Systems Manager Parameter Store"), nor a write-only one (`writeOnlyProperties`:
  no read returns it);
- an array is compared item by item in order, or as a set where the schema says
  `"insertionOrder": false` (at any depth: the schema's default is true), with `ADD` for
  an item found and not expected and `REMOVE` for one expected and not found;
- an object by the keys the template sets: a key the reader read and found unset is
  `REMOVE`, one it does not read is not compared;
- a scalar by its text (`4` and `"4"` are equal; booleans as `true` and `false`).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import cfnlint

SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:[^}]+\}\}")
_SKIP = object()
# an absent key: the reader does not read it (None: read, and unset)
_UNREAD = object()


@functools.cache
def schema(region: str, type_name: str) -> dict[str, Any] | None:
    """The CloudFormation resource provider schema of a type in a region (None: no such
    registry type, as for custom resources and CDK's metadata)."""
    providers = json.loads((SCHEMAS / "providers" / f"{region}.json").read_text())
    if type_name not in providers:
        return None
    found: dict[str, Any] = json.loads(
        (SCHEMAS / "resources" / f"{providers[type_name]}.json").read_text()
    )
    return found


def _walk(spec: dict[str, Any], definitions: dict[str, Any], path: str, depth: int) -> set[str]:
    """The paths (`Name/*/Inner`) under `spec` of arrays whose order means nothing."""
    if depth > 8:  # a recursive definition: deep enough for any template phoenix writes
        return set()
    if "$ref" in spec:
        spec = definitions.get(spec["$ref"].rsplit("/", 1)[-1], {})
    found = {path} if spec.get("type") == "array" and spec.get("insertionOrder") is False else set()
    if isinstance(spec.get("items"), dict):
        found |= _walk(spec["items"], definitions, f"{path}/*", depth + 1)
    for name, inner in (spec.get("properties") or {}).items():
        found |= _walk(inner, definitions, f"{path}/{name}", depth + 1)
    return found


@functools.cache
def unordered(region: str, type_name: str) -> frozenset[str]:
    """The type's arrays, at any depth, compared as sets (`/Name/*/Inner`)."""
    found = schema(region, type_name) or {}
    return frozenset(_walk({"properties": found.get("properties", {})},
                           found.get("definitions", {}), "", 0))  # fmt: skip


def _without(value: Any, parts: list[str]) -> Any:
    """`value` without what the path `parts` (`*` for every item) names."""
    if not parts:
        return _SKIP
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(value, list):
        return [_without(v, rest) for v in value]
    if isinstance(value, dict) and head in value:
        inner = _without(value[head], rest)
        return {k: v for k, v in value.items() if k != head} | (
            {} if inner is _SKIP else {head: inner}
        )
    return value


def expected(region: str, type_name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The template's properties that are compared: without dynamic references and
    write-only properties."""
    kept = _prune(properties)
    for path in (schema(region, type_name) or {}).get("writeOnlyProperties", []):
        kept = _without(kept, path.removeprefix("/properties/").split("/"))
    return kept if isinstance(kept, dict) else {}


def _prune(value: Any) -> Any:
    """The value without what a dynamic reference sets (_SKIP: all of it)."""
    if isinstance(value, str):
        return _SKIP if DYNAMIC_REFERENCE.search(value) else value
    if isinstance(value, dict):
        kept = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not _SKIP}
    if isinstance(value, list):
        items = [_prune(v) for v in value]
        return _SKIP if any(v is _SKIP for v in items) else items
    return value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return "null"
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else _scalar(value)


def _difference(path: str, expected: Any, actual: Any, kind: str) -> dict[str, str]:
    return {
        "PropertyPath": path,
        "ExpectedValue": _text(expected),
        "ActualValue": _text(actual),
        "DifferenceType": kind,
    }


def _schema_path(path: str) -> str:
    """`/Name/0/Inner` as the schema walk names it: `/Name/*/Inner`."""
    return "/".join("*" if part.isdigit() else part for part in path.split("/"))


class Comparison:
    """The differences between one resource's expected and actual properties."""

    def __init__(self, sets: frozenset[str]) -> None:
        self._sets = sets

    def differences(self, path: str, expected: Any, actual: Any) -> list[dict[str, str]]:
        if actual is None:
            return [_difference(path, expected, None, "REMOVE")]
        if isinstance(expected, dict):
            return self._object(path, expected, actual)
        if isinstance(expected, list) and isinstance(actual, list):
            if _schema_path(path) in self._sets:
                return self._set(path, expected, actual)
            return self._list(path, expected, actual)
        if isinstance(expected, list) or _scalar(expected) != _scalar(actual):
            return [_difference(path, expected, actual, "NOT_EQUAL")]
        return []

    def _object(self, path: str, expected: dict[str, Any], actual: Any) -> list[dict[str, str]]:
        if not isinstance(actual, dict):
            return [_difference(path, expected, actual, "NOT_EQUAL")]
        found: list[dict[str, str]] = []
        for key, value in expected.items():
            seen = actual.get(key, _UNREAD)
            if seen is not _UNREAD:
                found += self.differences(f"{path}/{key}", value, seen)
        return found

    def _set(self, path: str, expected: list[Any], actual: list[Any]) -> list[dict[str, str]]:
        """Items of `expected` no item of `actual` matches (REMOVE), and the items of
        `actual` left over (ADD)."""
        left = list(range(len(actual)))
        missing = []
        for n, item in enumerate(expected):
            item_path = f"{path}/{n}"
            match = next(
                (m for m in left if not self.differences(item_path, item, actual[m])), None
            )
            if match is None:
                missing.append(n)
            else:
                left.remove(match)
        removed = [_difference(f"{path}/{n}", expected[n], None, "REMOVE") for n in missing]
        return removed + [_difference(f"{path}/{m}", None, actual[m], "ADD") for m in left]

    def _list(self, path: str, expected: list[Any], actual: list[Any]) -> list[dict[str, str]]:
        found = []
        for n, item in enumerate(expected):
            if n < len(actual):
                found += self.differences(f"{path}/{n}", item, actual[n])
            else:
                found.append(_difference(f"{path}/{n}", item, None, "REMOVE"))
        extra = range(len(expected), len(actual))
        return found + [_difference(f"{path}/{m}", None, actual[m], "ADD") for m in extra]
