"""The Image Builder API the embedded AWS answers (REST-JSON, as botocore sends it)."""

from __future__ import annotations

import json
import uuid

from moto.core.responses import BaseResponse

from local.imagebuilder.models import ImageBuilderBackend, imagebuilder_backends


class ImageBuilderResponse(BaseResponse):
    def __init__(self) -> None:
        super().__init__(service_name="imagebuilder")

    @property
    def backend(self) -> ImageBuilderBackend:
        return imagebuilder_backends[self.current_account][self.region]

    def create_image(self) -> str:
        """CreateImage: the rehearsal's build finishes at once (see ImageBuilderBackend.bake).

        The recipe ARN names the pipeline and version (`image-recipe/phoenix-<name>/<x.y.z>`);
        the tags `phoenix:health` (healthy, failing, slow) and `phoenix:architecture` (arm64,
        x86_64) say what kind of AMI to bake; `distributionConfigurationArn`, one deployed
        from a template, where its AMIs go.
        """
        recipe = str(self._get_param("imageRecipeArn"))
        self._get_param("infrastructureConfigurationArn")
        tags = self._get_param("tags") or {}
        distribution = self._get_param("distributionConfigurationArn")
        image = self.backend.create_image(recipe, tags, distribution)
        return json.dumps(
            {
                "requestId": str(uuid.uuid4()),
                "clientToken": self._get_param("clientToken"),
                "imageBuildVersionArn": image.arn,
            }
        )

    def get_image(self) -> str:
        image = self.backend.get_image(self._get_param("imageBuildVersionArn"))
        return json.dumps({"requestId": str(uuid.uuid4()), "image": image.to_api()})

    def start_image_pipeline_execution(self) -> str:
        token = str(self._get_param("clientToken"))
        image = self.backend.start_pipeline(str(self._get_param("imagePipelineArn")), token)
        return json.dumps(
            {
                "requestId": str(uuid.uuid4()),
                "clientToken": token,
                "imageBuildVersionArn": image.arn,
            }
        )

    def list_image_scan_findings(self) -> str:
        """ListImageScanFindings, in one page (an image here has few findings)."""
        findings = self.backend.scan_findings(self._get_param("filters") or [])
        return json.dumps({"requestId": str(uuid.uuid4()), "findings": findings})
