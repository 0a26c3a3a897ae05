"""A vulnerability found on a serving instance (docs/hygiene.md, CVEs after release).

Amazon Inspector sends `Inspector2 Finding` for every finding it opens or updates (its
user guide, "Amazon EventBridge event schema for Amazon Inspector events"). For an
ACTIVE finding on an EC2 instance of one of this environment's fleets (the instance's
`phoenix:fleet` tag) at or above the fleet's `cve_severity`, the function records it once
in the ledger (the fleet, the AMI, the vulnerability: Inspector sends the same finding
again on every update), puts `Fleet Vulnerable` and counts `FleetsVulnerable`.
Anything else is logged and refused before any change: another source or detail type, a
malformed event, a finding that is not ACTIVE, on no EC2 instance, on an instance that
is not here or not of this environment's fleets, or below the fleet's threshold.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from phoenix.kernel import clock, events
from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import fleet_key, iso
from phoenix.kernel.names import FLEET_TAG
from phoenix.kernel.registry import read_fleet
from phoenix.kernel.settings import ReleaseSettings
from phoenix.kernel.severity import at_or_above

Severity = Literal["UNTRIAGED", "INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


class VulnerabilitySettings(ReleaseSettings):
    """The vulnerability function's settings: the environment, its ledger table, and the
    image pipelines a fleet with `rebuild_on_cve` may start (name -> ARN; a promoted
    pipeline has none here), in the region that bakes the images."""

    image_pipelines: dict[str, str] = Field(default_factory=dict)
    image_region: str = ""

    @field_validator("image_pipelines", mode="before")
    @classmethod
    def _from_json(cls, value: Any) -> Any:
        """The environment carries it as JSON (FunctionSettings.to_environment)."""
        return json.loads(value) if isinstance(value, str) else value


class Ec2Details(BaseModel):
    image_id: str = Field(alias="imageId", pattern=r"^ami-[0-9a-f]{8,17}$")


class ResourceDetails(BaseModel):
    aws_ec2_instance: Ec2Details | None = Field(default=None, alias="awsEc2Instance")


class Resource(BaseModel):
    type: str
    id: str = Field(min_length=1, max_length=200)
    details: ResourceDetails = ResourceDetails()


class PackageDetails(BaseModel):
    vulnerability_id: str = Field(alias="vulnerabilityId", min_length=1, max_length=200)


class FindingDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    finding_arn: str = Field(alias="findingArn", pattern=r"^arn:aws[a-z-]*:inspector2:")
    severity: Severity
    status: Literal["ACTIVE", "SUPPRESSED", "CLOSED"]
    title: str = Field(default="", max_length=1000)
    resources: list[Resource] = Field(min_length=1)
    package: PackageDetails | None = Field(default=None, alias="packageVulnerabilityDetails")


class FindingEvent(BaseModel):
    source: Literal["aws.inspector2"]
    detail_type: Literal["Inspector2 Finding"] = Field(alias="detail-type")
    detail: FindingDetail


class RefusedError(Exception):
    """Nothing for phoenix to do; the reason is logged, nothing changes."""


@dataclass(frozen=True)
class Vulnerable:
    spec: dict[str, Any]
    fleet: str
    ami: str
    instance: str
    vulnerability: str
    severity: str
    finding: str
    title: str


def parse(event: Any, settings: VulnerabilitySettings, aws: Clients) -> Vulnerable:
    """The vulnerable fleet the finding names, or RefusedError (pydantic's ValidationError
    for a malformed event). Reads only: the instance and the fleet's spec."""
    finding = FindingEvent.model_validate(event).detail
    if finding.status != "ACTIVE":
        raise RefusedError(f"finding is {finding.status}")
    instance = next((r for r in finding.resources if r.type == "AWS_EC2_INSTANCE"), None)
    if instance is None:
        raise RefusedError("finding is on no EC2 instance")
    try:
        found = aws.ec2.describe_instances(InstanceIds=[instance.id])["Reservations"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "InvalidInstanceID.NotFound":
            raise
        found = []
    described = [i for reservation in found for i in reservation["Instances"]]
    if not described:
        raise RefusedError(f"no instance {instance.id} here")
    tags = {t["Key"]: t["Value"] for t in described[0].get("Tags", [])}
    environment, _, fleet = tags.get(FLEET_TAG, "").partition("/")
    if environment != settings.environment or not fleet:
        raise RefusedError(f"instance {instance.id} is of no fleet of {settings.environment}")
    spec = read_fleet(aws.ssm, settings.environment, fleet)
    if spec is None:
        raise RefusedError(f"no fleet {fleet} in {settings.environment}")
    threshold = str(spec.get("cve_severity", "HIGH"))
    if not at_or_above(finding.severity, threshold):
        raise RefusedError(f"{finding.severity} is below {fleet}'s cve_severity {threshold}")
    details = instance.details.aws_ec2_instance
    return Vulnerable(
        spec=spec,
        fleet=fleet,
        ami=str(described[0].get("ImageId") or (details.image_id if details else "")),
        instance=instance.id,
        vulnerability=finding.package.vulnerability_id if finding.package else finding.title,
        severity=finding.severity,
        finding=finding.finding_arn,
        title=finding.title,
    )


def record(aws: Clients, settings: VulnerabilitySettings, found: Vulnerable) -> bool:
    """Keep the finding on the fleet's ledger partition once (fleet, AMI, vulnerability);
    False when it was kept already (an update of the same finding, or another instance
    of the same AMI), and nothing is put again."""
    try:
        aws.dynamodb.put_item(
            TableName=settings.table_name,
            Item={
                "pk": fleet_key(found.fleet)["pk"],
                "sk": {"S": f"CVE#{found.ami}#{found.vulnerability}"},
                "finding": {"S": found.finding},
                "severity": {"S": found.severity},
                "instance": {"S": found.instance},
                "at": {"S": iso(clock.now())},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    action = rebuild(aws, settings, found) if found.spec.get("rebuild_on_cve") else "reported"
    events.put(
        aws.events,
        "Fleet Vulnerable",
        {
            "environment": settings.environment,
            "fleet": found.fleet,
            "ami": found.ami,
            "instance": found.instance,
            "vulnerability": found.vulnerability,
            "severity": found.severity,
            "finding": found.finding,
            "title": found.title[:300],
            "action": action,
        },
    )
    return True


def rebuild(aws: Clients, settings: VulnerabilitySettings, found: Vulnerable) -> str:
    """Start the fleet's image pipeline (what was done, as the event says it). One build
    per pipeline, AMI and vulnerability, whichever fleet asks: the client token is theirs
    (StartImagePipelineExecution is idempotent on it)."""
    pipeline = str(found.spec.get("image_pipeline", ""))
    arn = settings.image_pipelines.get(pipeline)
    if not arn:
        return f"reported: pipeline {pipeline} is not this environment's to start"
    token = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{arn}|{found.ami}|{found.vulnerability}"))
    client = aws.in_region(settings.image_region or settings.region).imagebuilder
    started = client.start_image_pipeline_execution(imagePipelineArn=arn, clientToken=token)
    return f"rebuild started: {started['imageBuildVersionArn']}"
