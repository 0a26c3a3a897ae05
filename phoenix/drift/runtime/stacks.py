"""Stack drift for the drift check: each fleet's resources that differ from their template,
as CloudFormation's drift detection finds them (docs/hygiene.md).

A detection takes CloudFormation minutes, so each run reads the results of the detection
the run before started (DescribeStackResourceDrifts) and starts the next (DetectStackDrift,
on the fleets' resources only: `drift_resources` of each fleet's registry entry). Two
calls a stack (a page per 100 resources checked), none per fleet or instance. A resource
the last detection asked for and has no result for was not checked (its read failed:
"Results will be available for resources on which CloudFormation successfully completed
drift detection", API reference, DescribeStackDriftDetectionStatus): that is logged. A
stack CloudFormation cannot check now (being deployed, or a detection still running) or
cannot be reached is logged and tried again by the next run; it stops no other stack.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from types_boto3_cloudformation.client import CloudFormationClient

logger = Logger(child=True)
DRIFTED = ("MODIFIED", "DELETED")
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
    """Every result of the stack's last detection (no paginator in botocore)."""
    found: list[dict[str, Any]] = []
    page = cloudformation.describe_stack_resource_drifts(StackName=stack, MaxResults=100)
    while True:
        found += [dict(d) for d in page["StackResourceDrifts"]]
        if not page.get("NextToken"):
            return found
        page = cloudformation.describe_stack_resource_drifts(
            StackName=stack, MaxResults=100, NextToken=page["NextToken"]
        )


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
            results = _last_results(cloudformation, stack)
            for resource in results:
                fleet = fleets.get(str(resource["LogicalResourceId"]))
                if fleet and resource["StackResourceDriftStatus"] in DRIFTED:
                    drifted[fleet].append(_drift(resource))
            checked = {str(r["LogicalResourceId"]) for r in results}
            if checked and (missing := sorted(set(fleets) - checked)):
                logger.warning(
                    "stack drift detection did not check some resources",
                    extra={"stack": stack, "count": len(missing), "resources": missing[:20]},
                )
            cloudformation.detect_stack_drift(StackName=stack, LogicalResourceIds=sorted(fleets))
        except (ClientError, BotoCoreError) as error:
            reason = error.response.get("Error", {}) if isinstance(error, ClientError) else error
            logger.warning(
                "stack drift not checked this time", extra={"stack": stack, "error": str(reason)}
            )
    return dict(drifted)
