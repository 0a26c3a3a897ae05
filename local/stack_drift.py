"""CloudFormation drift detection in the embedded AWS: moto has none.

DetectStackDrift, DescribeStackDriftDetectionStatus and DescribeStackResourceDrifts, as
the CloudFormation API reference and user guide ("Detect unmanaged configuration changes
to stacks and resources with drift detection") describe them:
- DetectStackDrift checks each resource of the stack, or those its `LogicalResourceIds`
  name (at most 200: botocore's model refuses more; a name the stack does not have is a
  ValidationError). It compares "only resource properties explicitly defined in the
  stack template", with their intrinsic functions resolved, against what the resource's
  service describes now. A property set by a dynamic reference (`{{resolve:ssm:...}}`)
  is not compared: "CloudFormation doesn't support drift detection on dynamic
  references" (user guide, "Get a plaintext value from Systems Manager Parameter
  Store").
- A resource is `IN_SYNC`, `MODIFIED` (with its `PropertyDifferences`: `NOT_EQUAL`, or
  for an array `ADD` and `REMOVE`; an array is compared in order unless the type's
  resource schema says `"insertionOrder": false`) or `DELETED` (no longer described).
  The stack is `DRIFTED` when one of them is.
- CloudFormation reads each resource with the caller's credentials, so the caller needs
  each read permission of the resource's type: the `handlers.read.permissions` of the
  CloudFormation resource provider schema (AWS's schemas, as cfn-lint ships them).
  local.iam evaluates them against the caller's role when it calls DetectStackDrift
  (`authorize_reads`); a resource it may not read is not checked, and the detection
  ends `DETECTION_FAILED` ("The stack drift detection operation has failed for at least
  one resource in the stack. Results will be available for resources on which
  CloudFormation successfully completed drift detection": API reference,
  DescribeStackDriftDetectionStatus). Each permission is asked on `*`: the describe
  calls of the types below support no resource-level permissions.
- DescribeStackResourceDrifts returns the last detection's results, filtered by
  `StackResourceDriftStatusFilters`, at most `MaxResults` (1 to 100) a page. "Resources
  that don't currently support drift detection aren't checked, and so not included."

A detection completes at once here (on AWS it "can take up to several minutes"; a
caller that reads the results of the detection before the last one never waits).

What is read (local.stack_drift_readers): the properties each reader returns, for
AWS::AutoScaling::AutoScalingGroup, AWS::EC2::SecurityGroup, AWS::EC2::SecurityGroupIngress,
AWS::EC2::SecurityGroupEgress and AWS::ElasticLoadBalancingV2's LoadBalancer, Listener and
TargetGroup; a template property a reader does not read is not compared, and another type
is not checked. AWS checks more: the emulation finds less drift than AWS, never more.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cfnlint
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import Stack as FakeStack
from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

from local import sim_time
from local.iam_policy import Request
from local.stack_drift_readers import READERS

ACCOUNT = "123456789012"
SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:[^}]+\}\}")
MAX_RESULTS = 100
_SKIP = object()


@functools.cache
def _schema(region: str, type_name: str) -> dict[str, Any] | None:
    """The CloudFormation resource provider schema of a type in a region (None: no such
    registry type, as for custom resources and CDK's metadata)."""
    providers = json.loads((SCHEMAS / "providers" / f"{region}.json").read_text())
    if type_name not in providers:
        return None
    schema: dict[str, Any] = json.loads(
        (SCHEMAS / "resources" / f"{providers[type_name]}.json").read_text()
    )
    return schema


def read_permissions(region: str, type_name: str) -> list[str] | None:
    """What reading a resource of the type asks of the caller (None: it cannot be read,
    so drift detection does not check it)."""
    schema = _schema(region, type_name)
    read = (schema or {}).get("handlers", {}).get("read")
    return list(read["permissions"]) if read else None


def _unordered(region: str, type_name: str) -> set[str]:
    """The type's array properties whose order means nothing ("insertionOrder": false;
    the resource schema's default is true)."""
    properties = (_schema(region, type_name) or {}).get("properties", {})
    return {name for name, spec in properties.items() if spec.get("insertionOrder") is False}


@dataclass
class Detection:
    id: str
    stack_id: str
    timestamp: datetime
    drifts: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # logical ID -> what it lacked

    def status(self) -> dict[str, Any]:
        drifted = [d for d in self.drifts if d["StackResourceDriftStatus"] in DRIFTED]
        if drifted:
            stack = "DRIFTED"
        elif self.failed:
            stack = "UNKNOWN"
        else:
            stack = "IN_SYNC" if self.drifts else "NOT_CHECKED"
        answer: dict[str, Any] = {
            "StackId": self.stack_id,
            "StackDriftDetectionId": self.id,
            "StackDriftStatus": stack,
            "DetectionStatus": "DETECTION_FAILED" if self.failed else "DETECTION_COMPLETE",
            "DriftedStackResourceCount": len(drifted),
            "Timestamp": self.timestamp,
        }
        if self.failed:
            answer["DetectionStatusReason"] = "Failed to detect drift on resources " + ", ".join(
                f"[{logical}]: not authorized to perform {action}"
                for logical, action in sorted(self.failed.items())
            )
        return answer


DRIFTED = {"MODIFIED", "DELETED"}
_lock = threading.Lock()
_detections: dict[str, Detection] = {}
_latest: dict[str, str] = {}  # stack ID -> the last detection's ID
_unreadable: dict[tuple[str, str], dict[str, str]] = {}  # (region, stack) -> logical -> action


def _forget() -> None:
    with _lock:
        _detections.clear()
        _latest.clear()
        _unreadable.clear()


sim_time.on_forget(_forget)


def _stack(region: str, name: str) -> FakeStack:
    stack: FakeStack = cloudformation_backends[ACCOUNT][region].get_stack(name)
    return stack


def _resources(stack: FakeStack, logical_ids: list[str]) -> dict[str, dict[str, Any]]:
    declared: dict[str, dict[str, Any]] = stack.template_dict.get("Resources", {})
    unknown = sorted(set(logical_ids) - set(declared))
    if unknown:
        raise ValidationError(
            message=f"Resources [{', '.join(unknown)}] do not exist in stack {stack.name}"
        )
    return {k: v for k, v in declared.items() if not logical_ids or k in logical_ids}


def authorize_reads(
    region: str, params: Mapping[str, Any], allowed: Callable[[Request], bool]
) -> None:
    """For DetectStackDrift called by a function: which resources its role may not read
    (local.iam calls this before the call is sent; the detection leaves them out)."""
    stack = _stack(region, str(params["StackName"]))
    lacking: dict[str, str] = {}
    for logical, declared in _resources(
        stack, list(params.get("LogicalResourceIds") or [])
    ).items():
        for permission in read_permissions(region, declared["Type"]) or []:
            if not allowed(Request(permission, "*")):
                lacking[logical] = permission
                break
    with _lock:
        _unreadable[(region, stack.stack_id)] = lacking


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


def _object_differences(path: str, expected: dict[str, Any], actual: Any) -> list[dict[str, str]]:
    if not isinstance(actual, dict):
        return [_difference(path, expected, actual, "NOT_EQUAL")]
    found: list[dict[str, str]] = []
    for key, value in expected.items():
        if actual.get(key) is None:
            found.append(_difference(f"{path}/{key}", value, None, "REMOVE"))
        else:
            found += differences(f"{path}/{key}", value, actual[key])
    return found


def _set_differences(path: str, expected: list[Any], actual: list[Any]) -> list[dict[str, str]]:
    """Items of `expected` no item of `actual` matches (REMOVE), and the items of `actual`
    left over (ADD)."""
    left = list(range(len(actual)))
    missing = []
    for n, item in enumerate(expected):
        match = next((m for m in left if not differences("", item, actual[m])), None)
        if match is None:
            missing.append(n)
        else:
            left.remove(match)
    removed = [_difference(f"{path}/{n}", expected[n], None, "REMOVE") for n in missing]
    return removed + [_difference(f"{path}/{m}", None, actual[m], "ADD") for m in left]


def _list_differences(path: str, expected: list[Any], actual: list[Any]) -> list[dict[str, str]]:
    found = []
    for n, item in enumerate(expected):
        if n < len(actual):
            found += differences(f"{path}/{n}", item, actual[n])
        else:
            found.append(_difference(f"{path}/{n}", item, None, "REMOVE"))
    extra = range(len(expected), len(actual))
    return found + [_difference(f"{path}/{m}", None, actual[m], "ADD") for m in extra]


def differences(
    path: str, expected: Any, actual: Any, *, unordered: bool = False
) -> list[dict[str, str]]:
    """How `actual` differs from `expected`: an object's keys that `expected` sets, an
    array item by item (in order, or as a set), a scalar by its text."""
    if isinstance(expected, dict):
        return _object_differences(path, expected, actual)
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [_difference(path, expected, actual, "NOT_EQUAL")]
        if unordered:
            return _set_differences(path, expected, actual)
        return _list_differences(path, expected, actual)
    if _scalar(expected) == _scalar(actual):
        return []
    return [_difference(path, expected, actual, "NOT_EQUAL")]


def _drift(
    region: str, stack: FakeStack, logical: str, declared: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """One resource's drift (None: not checked)."""
    type_name = str(declared["Type"])
    reader = READERS.get(type_name)
    if reader is None or read_permissions(region, type_name) is None:
        return None
    resource = stack.resource_map[logical]
    physical = getattr(resource, "physical_resource_id", None)
    pruned = _prune(declared.get("Properties") or {})
    expected = parsing.clean_json(pruned if pruned is not _SKIP else {}, stack.resource_map)
    actual = reader(region, physical, expected)
    drift: dict[str, Any] = {
        "StackId": stack.stack_id,
        "LogicalResourceId": logical,
        "ResourceType": type_name,
        "Timestamp": now,
    }
    if physical:
        drift["PhysicalResourceId"] = str(physical)
    if actual is None:
        return drift | {
            "StackResourceDriftStatus": "DELETED",
            "ExpectedProperties": json.dumps(expected),
        }
    compared = {k: v for k, v in expected.items() if k in actual}
    unordered = _unordered(region, type_name)
    found = [
        d for key, value in compared.items()
        for d in (
            [_difference(f"/{key}", value, None, "REMOVE")] if actual[key] is None
            else differences(f"/{key}", value, actual[key], unordered=key in unordered)
        )
    ]  # fmt: skip
    return drift | {
        "StackResourceDriftStatus": "MODIFIED" if found else "IN_SYNC",
        "ExpectedProperties": json.dumps(compared, sort_keys=True),
        "ActualProperties": json.dumps({k: actual[k] for k in compared}, sort_keys=True),
        "PropertyDifferences": found,
    }


def detect(region: str, stack_name: str, logical_ids: list[str]) -> Detection:
    stack = _stack(region, stack_name)
    resources = _resources(stack, logical_ids)
    with _lock:
        lacking = _unreadable.pop((region, stack.stack_id), {})
    now = sim_time.now()
    detection = Detection(str(uuid.uuid4()), stack.stack_id, now)
    for logical, declared in resources.items():
        if logical in lacking:
            detection.failed[logical] = lacking[logical]
        elif (drift := _drift(region, stack, logical, declared, now)) is not None:
            detection.drifts.append(drift)
    with _lock:
        _detections[detection.id] = detection
        _latest[stack.stack_id] = detection.id
    return detection


def _detect_stack_drift(self: CloudFormationResponse) -> ActionResult:
    logical_ids = self._get_param("LogicalResourceIds", [])
    detection = detect(self.region, self._get_param("StackName"), logical_ids)
    return ActionResult({"StackDriftDetectionId": detection.id})


def _describe_stack_drift_detection_status(self: CloudFormationResponse) -> ActionResult:
    wanted = self._get_param("StackDriftDetectionId")
    with _lock:
        detection = _detections.get(wanted)
    if detection is None:
        raise ValidationError(message=f"Stack drift detection {wanted} does not exist")
    return ActionResult(detection.status())


def _describe_stack_resource_drifts(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self.region, self._get_param("StackName"))
    statuses = set(self._get_param("StackResourceDriftStatusFilters", []))
    limit = int(self._get_param("MaxResults") or MAX_RESULTS)
    start = int(self._get_param("NextToken") or 0)
    with _lock:
        detection = _detections.get(_latest.get(stack.stack_id, ""))
    drifts = [
        d for d in (detection.drifts if detection else [])
        if not statuses or d["StackResourceDriftStatus"] in statuses
    ]  # fmt: skip
    result: dict[str, Any] = {"StackResourceDrifts": drifts[start : start + limit]}
    if start + limit < len(drifts):
        result["NextToken"] = str(start + limit)
    return ActionResult(result)


@functools.cache
def install() -> None:
    CloudFormationResponse.detect_stack_drift = _detect_stack_drift  # type: ignore[attr-defined]
    CloudFormationResponse.describe_stack_drift_detection_status = (  # type: ignore[attr-defined]
        _describe_stack_drift_detection_status
    )
    CloudFormationResponse.describe_stack_resource_drifts = (  # type: ignore[attr-defined]
        _describe_stack_resource_drifts
    )
