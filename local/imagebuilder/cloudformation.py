"""Image Builder resources in templates: recorded, with the ARNs CloudFormation returns.

moto's CloudFormation skips AWS::ImageBuilder::*, so a template that refers to one (Ref,
GetAtt Arn or Name) could not deploy. Each is recorded in the embedded Image Builder
with the ARN AWS would give it; nothing is built until an image is created.
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel

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


class _Recorded:
    """A recorded Image Builder resource; Ref and GetAtt Arn give its ARN."""

    TYPE = ""

    def __init__(self, arn: str, name: str) -> None:
        self.arn = arn
        self.name = name

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in {"Arn", "Name"}

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn if attribute_name == "Arn" else self.name

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = cloudformation_json.get("Properties", {})
        kind, versioned = RESOURCES[cls.TYPE]
        name = str(properties.get("Name", resource_name))
        arn = f"arn:aws:imagebuilder:{region_name}:{account_id}:{kind}/{name.lower()}"
        if versioned:
            arn += f"/{properties.get('Version', '1.0.0')}"
            if kind == "component":
                arn += "/1"
        imagebuilder_backends[account_id][region_name].resources[arn] = dict(properties)
        return cls(arn, name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )


# moto finds models as direct subclasses of CloudFormationModel.
MODELS = [
    type(kind.split("::")[-1] + "Model", (_Recorded, CloudFormationModel), {"TYPE": kind})
    for kind in RESOURCES
]
