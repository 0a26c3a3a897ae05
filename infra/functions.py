"""The one factory for phoenix's Lambda functions.

Every function gets the same runtime, architecture, Powertools layer, tracing, an
encrypted log group with the environment's retention, a role that may write only to
that log group, and an environment built from a typed settings model. Code is
`functions/<name>/` plus `functions/common/`, packaged under `functions/` so the
handler imports the same modules in Lambda as in the tests
(`functions.<name>.handler.lambda_handler`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    Acknowledgment,
    AssetHashType,
    BundlingOptions,
    DockerImage,
    Duration,
    Fn,
    ILocalBundling,
    RemovalPolicy,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.common.settings import FunctionSettings
from infra.config import LambdaConfig
from infra.observability import log_retention

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# The account that publishes the AWS-managed Powertools for AWS Lambda (Python) layers.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")


def powertools_layer_arn(version: int) -> str:
    """The managed layer's ARN in the deploying stack's own partition and region."""
    runtime = RUNTIME.name.replace(".", "")  # python3.14 -> python314
    return Fn.sub(
        "arn:${AWS::Partition}:lambda:${AWS::Region}:"
        f"{POWERTOOLS_LAYER_ACCOUNT}:layer:AWSLambdaPowertoolsPythonV3-{runtime}-arm64:{version}"
    )


@jsii.implements(ILocalBundling)
class _PackageSources:
    """Copies a function's sources into the asset, on this machine (no Docker).

    Nothing needs installing: boto3 comes with the runtime and Powertools (with
    pydantic) with the layer, so packaging is a copy, which CDK's local bundling
    hook does without the Docker engine its default bundling would need.
    """

    def __init__(self, source_root: Path, name: str) -> None:
        self._source_root = source_root
        self._name = name

    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        package = Path(output_dir) / "functions"
        package.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self._source_root / "__init__.py", package / "__init__.py")
        for folder in ("common", self._name):
            shutil.copytree(
                self._source_root / folder, package / folder, ignore=_SKIPPED, dirs_exist_ok=True
            )
        return True


class PhoenixFunction(lambda_.Function):
    """A Python Lambda function built the phoenix way.

    Defaults: Python 3.14 on arm64, 512 MB, 30 s timeout, X-Ray tracing active, the
    Powertools layer version from `config`, logs kept `config.log_retention_days` in a
    log group encrypted with `key`. `source_root` is the folder holding `__init__.py`,
    `common/` and `<name>/handler.py` (default: this repository's `functions/`).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        description: str,
        settings: FunctionSettings,
        config: LambdaConfig,
        key: kms.IKey,
        memory_size: int = 512,
        timeout: Duration | None = None,
        source_root: Path = FUNCTIONS_DIR,
    ) -> None:
        if not (source_root / name / "handler.py").is_file():
            raise ValueError(
                f"PhoenixFunction {id}: {source_root / name / 'handler.py'} is missing"
            )
        log_group = logs.LogGroup(
            scope,
            f"{id}Logs",
            retention=log_retention(config.log_retention_days),
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        role = iam.Role(
            scope,
            f"{id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"phoenix {name} function",
        )
        super().__init__(
            scope,
            id,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"functions.{name}.handler.lambda_handler",
            code=lambda_.Code.from_asset(
                str(source_root),
                asset_hash_type=AssetHashType.OUTPUT,
                bundling=BundlingOptions(
                    # Never pulled: local bundling always succeeds.
                    image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
                    local=_PackageSources(source_root, name),
                ),
            ),
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    scope, f"{id}Powertools", powertools_layer_arn(config.powertools_layer_version)
                )
            ],
            environment=settings.to_environment(),
            memory_size=memory_size,
            timeout=timeout or Duration.seconds(30),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=role,
        )
        log_group.grant_write(role)
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level "
                "permissions; that statement is the only wildcard in this role.",
            )
        )
