"""Image Builder resources in templates: recorded, with the ARNs CloudFormation returns.

moto's CloudFormation skips AWS::ImageBuilder::*, so a template that refers to one (Ref,
GetAtt Arn or Name) could not deploy. Each is recorded in the embedded Image Builder
with the ARN AWS would give it; nothing is built until an image is created.
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel

from local.cloudformation_resources import ApiBacked
from local.imagebuilder.models import imagebuilder_backends

# CloudFormation type -> (ARN resource type, whether the ARN carries a version)
RESOURCES = {
    "AWS::ImageBuilder::Component": ("component", True),
    "AWS::ImageBuilder::ImageRecipe": ("image-recipe", True),
    "AWS::ImageBuilder::ContainerRecipe": ("container-recipe", True),
    "AWS::ImageBuilder::Workflow": ("workflow", True),
    "AWS::ImageBuilder::InfrastructureConfiguration": ("infrastructure-configuration", False),
    "AWS::ImageBuilder::DistributionConfiguration": ("distribution-configuration", False),
    "AWS::ImageBuilder::ImagePipeline": ("image-pipeline", False),
    "AWS::ImageBuilder::LifecyclePolicy": ("lifecycle-policy", False),
}


class _Recorded(ApiBacked):
    """A recorded Image Builder resource; Ref and GetAtt Arn give its ARN."""

    NAME_PROPERTY = "Name"
    ATTRIBUTES = frozenset({"Arn", "Name"})

    @classmethod
    def apply(
        cls, properties: dict[str, Any], name: str, account: str, region: str
    ) -> tuple[str, dict[str, str]]:
        kind, versioned = RESOURCES[cls.TYPE]
        name = str(properties.get("Name", name))
        arn = f"arn:aws:imagebuilder:{region}:{account}:{kind}/{name.lower()}"
        if versioned:
            arn += f"/{properties.get('Version', '1.0.0')}"
            if kind == "component":
                arn += "/1"
        imagebuilder_backends[account][region].resources[arn] = properties
        return arn, {"Arn": arn, "Name": name}


# moto finds models as direct subclasses of CloudFormationModel.
MODELS = [
    type(kind.split("::")[-1] + "Model", (_Recorded, CloudFormationModel), {"TYPE": kind})
    for kind in RESOURCES
]
