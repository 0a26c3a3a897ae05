"""Stack drift for the drift check: each fleet's resources that differ from their template,
as CloudFormation's drift detection finds them (docs/hygiene.md).

A detection takes CloudFormation minutes, so each run reads the results of the detection
the run before started (DescribeStackResourceDrifts: MODIFIED and DELETED) and starts the
next (DetectStackDrift, on the fleets' resources only: `drift_resources` of each fleet's
registry entry). Two calls a stack (and a page per 100 drifted resources), none per
fleet or instance. A stack CloudFormation cannot check now (being deployed, or a
detection still running) is logged and left to the next run; it stops no other stack.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from types_boto3_cloudformation.client import CloudFormationClient

logger = Logger(child=True)
DRIFTED: list[Literal["MODIFIED", "DELETED"]] = ["MODIFIED", "DELETED"]
# What a finding carries of a resource's differences (an event holds 20 findings).
DIFFERENCES_SHOWN = 3
TEXT_LIMIT = 240


@dataclass(frozen=True)
class ResourceDrift:
    """One resource of a fleet that differs from its template."""

    logical_id: str
    resource_type: str
    status: str  # MODIFIED or DELETED
    found: str
    expected: str


def _shown(differences: list[dict[str, Any]], value: str) -> str:
    text = "; ".join(f"{d['PropertyPath']} {d[value]}" for d in differences[:DIFFERENCES_SHOWN])
    if len(differences) > DIFFERENCES_SHOWN:
        text += f" (and {len(differences) - DIFFERENCES_SHOWN} more)"
    return text[:TEXT_LIMIT]


def _drift(resource: dict[str, Any]) -> ResourceDrift:
    status = str(resource["StackResourceDriftStatus"])
    differences = resource.get("PropertyDifferences") or []
    if status == "DELETED" or not differences:
        found, expected = "deleted" if status == "DELETED" else status, "as its template"
    else:
        found, expected = _shown(differences, "ActualValue"), _shown(differences, "ExpectedValue")
    return ResourceDrift(
        str(resource["LogicalResourceId"]), str(resource["ResourceType"]), status, found, expected
    )


def _last_results(cloudformation: CloudFormationClient, stack: str) -> list[dict[str, Any]]:
    """The drifted resources the stack's last detection found (no paginator in botocore)."""
    found: list[dict[str, Any]] = []
    more: dict[str, str] = {}
    while True:
        page = cloudformation.describe_stack_resource_drifts(
            StackName=stack, StackResourceDriftStatusFilters=DRIFTED, MaxResults=100, **more
        )
        found += [dict(d) for d in page["StackResourceDrifts"]]
        if not page.get("NextToken"):
            return found
        more = {"NextToken": page["NextToken"]}


def check_stacks(
    cloudformation: CloudFormationClient, specs: dict[str, dict[str, Any]]
) -> dict[str, list[ResourceDrift]]:
    """By fleet, its resources that differed from their template at the last detection;
    the next detection started."""
    owners: dict[str, dict[str, str]] = defaultdict(dict)  # stack -> logical ID -> fleet
    for name, spec in specs.items():
        for logical_id in spec.get("drift_resources") or []:
            owners[str(spec["stack"])][str(logical_id)] = name
    drifted: dict[str, list[ResourceDrift]] = defaultdict(list)
    for stack, fleets in sorted(owners.items()):
        try:
            for resource in _last_results(cloudformation, stack):
                if fleet := fleets.get(str(resource["LogicalResourceId"])):
                    drifted[fleet].append(_drift(resource))
            cloudformation.detect_stack_drift(StackName=stack, LogicalResourceIds=sorted(fleets))
        except ClientError as error:
            logger.warning(
                "stack drift not checked this time",
                extra={"stack": stack, "error": error.response.get("Error", {})},
            )
    return dict(drifted)
