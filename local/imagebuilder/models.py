"""EC2 Image Builder in the embedded AWS: the images a rehearsal bakes, and their events.

moto has no Image Builder. Phoenix needs two things from it: `GetImage` (the release
trigger reads which AMI an image produced in each region) and the `EC2 Image Builder
Image State Change` event that announces an image is AVAILABLE. `bake` stands in for a
pipeline run: it registers a real AMI in moto's EC2 (tagged with the health profile the
application model reads) and publishes the image's AVAILABLE event.

Distribution follows the distribution configuration CreateImage names
(`distributionConfigurationArn`, "the distribution configuration that defines and
configures the outputs of your pipeline"; EC2 Image Builder API Reference, CreateImage):
one AMI in each of its distributions' Regions ("Distribution: defines the settings for
a specific Region"), each registered in that Region's EC2, and GetImage's
`outputResources.amis` lists them all, one per Region ("Ami: region, the Amazon Web
Services Region of the Amazon EC2 AMI"; Image Builder User Guide, "Manage Image Builder
distribution settings"), tagged with its distribution's `AmiTags` ("The tags to apply
to AMIs distributed to this Region"; AmiDistributionConfiguration). Without one the
image has its build Region's AMI only. The build Region's AMI is always made
(phoenix's distributions list that Region first); the AVAILABLE event is published in
the build Region only, once every copy exists: Image Builder sends its events to the
default bus of the Region it runs in. Not emulated: the distribution's KMS keys,
launch permissions and AMI names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast, get_args

from boto3 import Session
from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.exceptions import JsonRESTError
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.events.models import events_backends

Health = Literal["healthy", "failing", "erroring", "degrading", "flaky", "cart", "slow"]
HEALTH_TAG = "phoenix:health"
DETAIL_TYPE = "EC2 Image Builder Image State Change"


# CreateImage's tag for what the image's scan finds (see Image.scan_status)
SCAN_TAG = "phoenix:scan"


class ResourceNotFoundError(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)
        self.code = 404


class InvalidParameterValueError(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterValueException", message)
        self.code = 400


@dataclass
class Image:
    arn: str
    name: str
    version: str
    ami_id: str
    region: str
    account: str
    health: Health
    created: datetime = field(default_factory=utcnow)
    copies: dict[str, str] = field(default_factory=dict)  # other Region -> its AMI id
    # The image's Inspector scan (the pipelines scan every image): its state, and the
    # severities of what it found (the `phoenix:scan` tag of CreateImage: `failed`, or
    # severities separated by commas; none: COMPLETED with no finding).
    scan_status: str = "COMPLETED"
    findings: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        """The `image` member of a GetImage response (the fields phoenix reads)."""
        return {
            "arn": self.arn,
            "name": self.name,
            "version": self.version,
            "type": "AMI",
            "platform": "Linux",
            "state": {"status": "AVAILABLE"},
            "dateCreated": self.created.isoformat(),
            "outputResources": {
                "amis": [
                    {
                        "region": region,
                        "image": ami,
                        "name": f"{self.name} {self.version}",
                        "accountId": self.account,
                    }
                    for region, ami in {self.region: self.ami_id, **self.copies}.items()
                ]
            },
            "tags": {HEALTH_TAG: self.health},
            # GetImage's Image.scanState (API reference, ImageScanState)
            "scanState": {"status": self.scan_status},
            "imageScanningConfiguration": {"imageScanningEnabled": True},
        }

    def scan_findings(self) -> list[dict[str, Any]]:
        """ListImageScanFindings' findings of this image (API reference,
        ImageScanFinding: the fields phoenix reads, and those that name it)."""
        return [
            {
                "awsAccountId": self.account,
                "imageBuildVersionArn": self.arn,
                "type": "PACKAGE_VULNERABILITY",
                "title": f"CVE-2026-{n:04d} - a package of {self.name}",
                "severity": severity,
                "packageVulnerabilityDetails": {"vulnerabilityId": f"CVE-2026-{n:04d}"},
            }
            for n, severity in enumerate(self.findings, 1)
        ]


class ImageBuilderBackend(BaseBackend):
    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.images: dict[str, Image] = {}
        self.builds: dict[str, int] = {}
        self.resources: dict[str, dict[str, Any]] = {}  # from templates, by ARN
        self.executions: dict[str, str] = {}  # StartImagePipelineExecution: token -> image

    def get_image(self, arn: str) -> Image:
        if not arn.startswith(f"arn:aws:imagebuilder:{self.region_name}:") or ":image/" not in arn:
            raise InvalidParameterValueError(
                f"The value supplied for parameter 'imageBuildVersionArn' is not valid: {arn}"
            )
        if arn not in self.images:
            raise ResourceNotFoundError(f"The image '{arn}' does not exist.")
        return self.images[arn]

    def scan_findings(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """ListImageScanFindings: exactly one filter (API reference: `filters`, 1 item),
        here `imageBuildVersionArn`; the image's findings."""
        if len(filters) != 1 or filters[0].get("name") != "imageBuildVersionArn":
            raise InvalidParameterValueError(
                "The value supplied for parameter 'filters' is not valid: this embedded "
                "Image Builder filters by imageBuildVersionArn only"
            )
        return [
            f for arn in filters[0].get("values", []) for f in self.get_image(arn).scan_findings()
        ]

    def distributions(self, arn: str | None) -> dict[str, dict[str, str]]:
        """Region -> the AMI tags of each distribution of a configuration recorded from a
        template (none without one)."""
        if arn is None:
            return {}
        if arn not in self.resources or ":distribution-configuration/" not in arn:
            raise ResourceNotFoundError(f"The distribution configuration '{arn}' does not exist.")
        return {
            str(d["Region"]): dict(d.get("AmiDistributionConfiguration", {}).get("AmiTags", {}))
            for d in self.resources[arn].get("Distributions", [])
        }

    def create_image(
        self, recipe_arn: str, tags: dict[str, str], distribution_arn: str | None = None
    ) -> Image:
        parts = recipe_arn.split(":image-recipe/")
        if len(parts) != 2 or len(parts[1].split("/")) != 2:
            raise InvalidParameterValueError(
                f"The value supplied for parameter 'imageRecipeArn' is not valid: {recipe_arn}"
            )
        name, version = parts[1].split("/")  # the recipe's name is the images' name
        health = tags.get(HEALTH_TAG, "healthy")
        if health not in get_args(Health):
            raise InvalidParameterValueError(
                f"The tag {HEALTH_TAG} must be one of {', '.join(get_args(Health))}, not {health!r}"
            )
        architecture = tags.get("phoenix:architecture", "arm64")
        regions = self.distributions(distribution_arn)
        return self.bake(
            name, version, cast(Health, health), architecture, regions, scan=tags.get(SCAN_TAG, "")
        )

    def start_pipeline(self, arn: str, client_token: str) -> Image:
        """StartImagePipelineExecution: a build of the pipeline's recipe, distributed as
        its configuration says (a healthy image: a rebuild picks up the patches). The
        client token makes it idempotent (API reference: "Unique, case-sensitive
        identifier you provide to ensure idempotency of the request"): the same token
        answers the same build."""
        if arn not in self.resources or ":image-pipeline/" not in arn:
            raise ResourceNotFoundError(f"The image pipeline '{arn}' does not exist.")
        if client_token in self.executions:
            return self.images[self.executions[client_token]]
        pipeline = self.resources[arn]
        recipe = str(pipeline["ImageRecipeArn"])
        # the recipe's parent image names its architecture (an AMI ID or SSM path)
        parent = str(self.resources.get(recipe, {}).get("ParentImage", ""))
        architecture = "x86_64" if "x86_64" in parent else "arm64"
        image = self.create_image(
            recipe,
            {"phoenix:architecture": architecture},
            pipeline.get("DistributionConfigurationArn"),
        )
        self.executions[client_token] = image.arn
        return image

    def bake(
        self,
        name: str,
        version: str,
        health: Health,
        architecture: str,
        regions: dict[str, dict[str, str]] | None = None,
        *,
        scan: str = "",
    ) -> Image:
        """Register the AMIs a pipeline run would produce (in this Region and the other
        `regions` it distributes to, each with its AMI tags) and announce it AVAILABLE.

        `name` is the image (and recipe) name, `phoenix-<env>-<pipeline>` for phoenix's.
        """
        build = self.builds.get(f"{name}/{version}", 0) + 1
        self.builds[f"{name}/{version}"] = build
        tags = {self.region_name: {}, **(regions or {})}
        amis = {
            region: self._register(region, f"{name} {version}/{build}", health, architecture, more)
            for region, more in tags.items()
        }
        prefix = f"arn:aws:imagebuilder:{self.region_name}:{self.account_id}"
        arn = f"{prefix}:image/{name}/{version}/{build}"
        own = amis.pop(self.region_name)
        image = Image(
            arn, name, version, own, self.region_name, self.account_id, health, copies=amis
        )
        if scan == "failed":
            image.scan_status = "FAILED"
        elif scan:
            image.findings = tuple(severity.strip().upper() for severity in scan.split(","))
        self.images[arn] = image
        events_backends[self.account_id][self.region_name].put_events(
            [
                {
                    "Source": "aws.imagebuilder",
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(
                        {"previous-state": {"status": "TESTING"}, "state": {"status": "AVAILABLE"}}
                    ),
                    "Resources": [arn],
                    "EventBusName": "default",
                }
            ]
        )
        return image

    def _register(
        self, region: str, name: str, health: Health, architecture: str, tags: dict[str, str]
    ) -> str:
        """One AMI in `region`'s EC2, tagged with the distribution's AMI tags and the
        health profile the application model reads there."""
        ec2 = ec2_backends[self.account_id][region]
        ami = ec2.register_image(name=name, description=f"baked by the rehearsal, health {health}")
        ami.architecture = architecture
        ec2.create_tags([ami.id], {**tags, HEALTH_TAG: health, "Name": name})
        return str(ami.id)


# moto's own region list has no Image Builder; it runs wherever EC2 does.
imagebuilder_backends = BackendDict(
    ImageBuilderBackend,
    "imagebuilder",
    use_boto3_regions=False,
    additional_regions=Session().get_available_regions("ec2"),
)
