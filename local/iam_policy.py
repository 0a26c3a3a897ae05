"""IAM policy evaluation, as the IAM User Guide documents it, for the embedded AWS.

moto's own IAM authorization checks actions only (its access_control module: "TODO add
support for the Resource and Condition parts of IAM policies"), so it would let through
every grant scoped too narrowly by resource or condition. This evaluator follows the
IAM User Guide:
- "Policy evaluation logic" (identity-based policies, one account): an explicit Deny in
  any statement wins; otherwise an Allow that matches the action, the resource and every
  condition allows; otherwise the request is implicitly denied.
- "IAM JSON policy elements: Action / NotAction": action names match case-insensitively,
  with `*` and `?` wildcards.
- "IAM JSON policy elements: Resource / NotResource": ARNs match with `*` and `?`
  wildcards within each of an ARN's six colon-separated parts ("Each of the six
  colon-delimited components of the ARN is checked separately", as for ArnLike).
- "IAM JSON policy elements: Condition operators" and "Creating a condition with
  multiple context keys or values": every operator of a statement must hold and every key
  within an operator (AND); any one of a key's values may match (OR). Condition key
  names are case-insensitive, String values case-sensitive. "If the key that you specify
  in a policy condition is not present in the request context, the values do not match
  and the condition is false. If the policy condition requires that the key is not
  matched, such as StringNotLike or ArnNotLike, and the right key is not present, the
  condition is true"; `...IfExists` is true when the key is absent; `Null` tests absence.
  `ForAnyValue:` needs one request value to match (false when the key is absent),
  `ForAllValues:` every request value (true when absent).

An operator this evaluator does not know, or a policy variable (`${aws:username}`), is
an error, never a silent allow or deny: the oracle must not guess.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any


class Decision(Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "implicitly denied"


class UnsupportedPolicyError(Exception):
    """The policy uses something this evaluator does not evaluate."""


@dataclass(frozen=True)
class Request:
    """One authorization: an action on one resource (an ARN, or `*` for actions that
    support no resource-level permissions) with its request context (condition keys)."""

    action: str
    resource: str
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def value_of(self, key: str) -> Sequence[str] | None:
        lowered = key.lower()
        for name, values in self.context.items():
            if name.lower() == lowered:
                return values
        return None


def statements_of(document: str | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A policy document's statements (IAM allows one statement object or a list)."""
    if isinstance(document, str):
        return list(_parsed(document))
    statement = document.get("Statement", [])
    return [statement] if isinstance(statement, Mapping) else list(statement)


@functools.lru_cache(maxsize=4096)
def _parsed(document: str) -> tuple[Mapping[str, Any], ...]:
    """A document's statements, parsed once: every call of a role's functions reads the
    same few documents."""
    policy = json.loads(document)
    statement = policy.get("Statement", [])
    return (statement,) if isinstance(statement, Mapping) else tuple(statement)


def evaluate(documents: Iterable[str | Mapping[str, Any]], request: Request) -> Decision:
    """The decision of identity-based `documents` on `request`."""
    allowed = False
    for document in documents:
        for statement in statements_of(document):
            if not _applies(statement, request):
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOWED if allowed else Decision.IMPLICIT_DENY


def _listed(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not any(_action_matches(p, request.action) for p in _listed(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_action_matches(p, request.action) for p in _listed(statement["NotAction"])):
            return False
    else:
        raise UnsupportedPolicyError(f"statement without Action or NotAction: {statement}")
    if "Resource" in statement:
        if not any(_arn_matches(p, request.resource) for p in _listed(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_arn_matches(p, request.resource) for p in _listed(statement["NotResource"])):
            return False
    else:
        raise UnsupportedPolicyError(f"statement without Resource or NotResource: {statement}")
    return all(
        _condition_holds(operator, key, _listed(values), request)
        for operator, keys in statement.get("Condition", {}).items()
        for key, values in keys.items()
    )


@cache
def _wildcard(pattern: str, *, case_sensitive: bool) -> re.Pattern[str]:
    if "${" in pattern:
        raise UnsupportedPolicyError(f"policy variables are not evaluated: {pattern}")
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def _like(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    return _wildcard(pattern, case_sensitive=case_sensitive).fullmatch(value) is not None


def _action_matches(pattern: str, action: str) -> bool:
    return _like(pattern, action, case_sensitive=False)


def _arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own."""
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) != 6 or len(given) != 6:
        return _like(pattern, arn)
    return all(_like(w, g) for w, g in zip(wanted, given, strict=True))


# operator -> (value test, negated)
_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (_like, False),
    "StringNotLike": (_like, True),
    "ArnEquals": (_arn_matches, False),  # ArnEquals and ArnLike behave alike (IAM docs)
    "ArnLike": (_arn_matches, False),
    "ArnNotEquals": (_arn_matches, True),
    "ArnNotLike": (_arn_matches, True),
    "Bool": (lambda p, v: str(p).lower() == str(v).lower(), False),
}


def _condition_holds(  # noqa: PLR0911 - one return per documented case
    operator: str, key: str, wanted: list[str], request: Request
) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    given = request.value_of(key)
    if name == "Null":
        absent = given is None or len(given) == 0
        return any(str(w).lower() == ("true" if absent else "false") for w in wanted)
    if name not in _OPERATORS:
        raise UnsupportedPolicyError(f"condition operator not evaluated here: {operator}")
    test, negated = _OPERATORS[name]
    if given is None or len(given) == 0:
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return if_exists or negated
    if qualifier == "ForAllValues":
        return all(_value_holds(test, negated, wanted, value) for value in given)
    if qualifier in ("", "ForAnyValue"):
        if qualifier == "" and len(given) > 1 and negated:
            return all(_value_holds(test, negated, wanted, value) for value in given)
        return any(_value_holds(test, negated, wanted, value) for value in given)
    raise UnsupportedPolicyError(f"condition set operator not evaluated here: {operator}")


def _value_holds(test: Any, negated: bool, wanted: list[str], value: str) -> bool:
    matched = any(test(str(w), str(value)) for w in wanted)
    return not matched if negated else matched
