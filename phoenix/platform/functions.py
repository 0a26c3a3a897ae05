"""The one factory for phoenix's Lambda functions.

Every function gets the same runtime, architecture, Powertools layer, tracing, an
encrypted log group with the environment's retention, a role that may write only to
that log group, and an environment built from a typed settings model and encrypted
with the environment's key. A function's
code is its component's runtime plus the kernel, packaged under `phoenix/` so the
handler imports the same modules in Lambda as in the tests
(`phoenix.release.handlers.gate.lambda_handler`): nothing else of the package, so a
change in one component leaves every other component's assets as they were.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    DockerImage,
    Duration,
    Fn,
    ILocalBundling,
    RemovalPolicy,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from phoenix.config.environment import LambdaConfig
from phoenix.kernel.settings import FunctionSettings
from phoenix.platform.nag import acknowledge_wildcard, skip_checkov
from phoenix.platform.observability import log_retention

# The `phoenix` package folder, in this checkout or wherever the package is installed.
PACKAGE_DIR = Path(__file__).resolve().parent.parent
# The parts of a component folder that run in Lambda; the rest are its constructs.
RUNTIME_FOLDERS = ("runtime", "handlers")
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# The account that publishes the AWS-managed Powertools for AWS Lambda (Python) layers.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")

# Why checkov's function checks do not apply to a phoenix function (docs/scanners.md).
UNRESERVED = (
    "No reserved concurrency: a reservation would also cap the function at that number "
    "(a plan's wave runs its fleets' steps at once), and it is taken from the account's "
    "unreserved concurrency, which Lambda never lets fall below 100, so it would not "
    "deploy in an account whose concurrency quota is 100."
)
OUTSIDE_VPC = (
    "Not in a VPC: the function calls only AWS service APIs (kernel/clients.py) and reaches "
    "nothing inside the VPC; attached to it, it would need the NAT gateways or an interface "
    "endpoint per service for the same calls."
)

BY_STATE_MACHINE = (
    "No dead-letter queue: a state machine's task invokes the function synchronously, so "
    "each error returns to the execution, which retries it and then catches it or fails; "
    "a dead-letter queue only ever receives failed asynchronous invocations."
)


def invoked_by_state_machine(function: lambda_.IFunction) -> None:
    """`function` is a state machine's task (a synchronous invocation): say so to checkov's
    dead-letter queue check, CKV_AWS_116."""
    skip_checkov(function, "CKV_AWS_116", BY_STATE_MACHINE)


def powertools_layer_arn(version: int) -> str:
    """The managed layer's ARN in the deploying stack's own partition and region."""
    runtime = RUNTIME.name.replace(".", "")  # python3.14 -> python314
    return Fn.sub(
        "arn:${AWS::Partition}:lambda:${AWS::Region}:"
        f"{POWERTOOLS_LAYER_ACCOUNT}:layer:AWSLambdaPowertoolsPythonV3-{runtime}-arm64:{version}"
    )


def runtime_component(handler: str) -> str:
    """The component whose runtime holds `handler` (`phoenix.<component>.<runtime|handlers>.`
    `<module>.lambda_handler`), or ValueError naming what is wrong."""
    parts = handler.split(".")
    if len(parts) < 5 or parts[0] != "phoenix" or parts[2] not in RUNTIME_FOLDERS:
        raise ValueError(
            f"handler {handler!r} is not phoenix.<component>.<runtime|handlers>.<module>.<function>"
        )
    return parts[1]


@jsii.implements(ILocalBundling)
class _PackageSources:
    """Copies the kernel and one component's runtime into the asset, on this machine.

    Nothing needs installing: boto3 comes with the runtime and Powertools (with
    pydantic) with the layer, so packaging is a copy, which CDK's local bundling
    hook does without the Docker engine its default bundling would need.
    """

    def __init__(self, package_dir: Path, component: str) -> None:
        self._package_dir = package_dir
        self._component = component

    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        package = Path(output_dir) / "phoenix"
        component = self._package_dir / self._component
        (package / self._component).mkdir(parents=True, exist_ok=True)
        shutil.copy2(self._package_dir / "__init__.py", package / "__init__.py")
        shutil.copy2(component / "__init__.py", package / self._component / "__init__.py")
        folders = [self._package_dir / "kernel"] + [
            component / name for name in RUNTIME_FOLDERS if (component / name).is_dir()
        ]
        for folder in folders:
            shutil.copytree(
                folder,
                package / folder.relative_to(self._package_dir),
                ignore=_SKIPPED,
                dirs_exist_ok=True,
            )
        return True


class PhoenixFunction(lambda_.Function):
    """A Python Lambda function built the phoenix way.

    Defaults: Python 3.14 on arm64, 512 MB, 30 s timeout, X-Ray tracing active, the
    Powertools layer version from `config`, logs kept `config.log_retention_days` in a
    log group encrypted with `key`, environment variables encrypted with `key`. `name`
    is how the role describes the function; `handler` names the function in a
    component's runtime (`phoenix.<component>.<runtime|handlers>.<module>.<function>`);
    `package_dir` is the `phoenix` package folder the code is copied from (default: this
    one).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        handler: str,
        description: str,
        settings: FunctionSettings,
        config: LambdaConfig,
        key: kms.IKey,
        memory_size: int = 512,
        timeout: Duration | None = None,
        package_dir: Path = PACKAGE_DIR,
        function_name: str | None = None,
    ) -> None:
        component = runtime_component(handler)
        module = package_dir.parent.joinpath(*handler.split(".")[:-1]).with_suffix(".py")
        if not module.is_file():
            raise ValueError(f"PhoenixFunction {id}: {module} is missing")
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
            handler=handler,
            code=lambda_.Code.from_asset(
                str(package_dir),
                asset_hash_type=AssetHashType.OUTPUT,
                bundling=BundlingOptions(
                    # Never pulled: local bundling always succeeds.
                    image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
                    local=_PackageSources(package_dir, component),
                    # CDK reuses a bundle for assets with the same source folder and
                    # bundling options, and does not look at the local bundler: the
                    # component must be part of the options, or every function would
                    # get the first component's bundle. Local bundling ignores it.
                    environment={"PHOENIX_COMPONENT": component},
                ),
            ),
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    scope, f"{id}Powertools", powertools_layer_arn(config.powertools_layer_version)
                )
            ],
            environment=settings.to_environment(),
            environment_encryption=key,
            memory_size=memory_size,
            timeout=timeout or Duration.seconds(30),
            # left to CloudFormation, unless a config names the function (a hook)
            function_name=function_name,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=role,
        )
        # The role as created (Function.role is typed optional): for grants and acknowledgments.
        self.execution_role = role
        log_group.grant_write(role)
        acknowledge_wildcard(
            role,
            "*",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level "
            "permissions; that statement is the only wildcard in this role.",
        )
        # How it is invoked (CKV_AWS_116, a dead-letter queue) is said where it is: by a
        # rule (platform/undelivered.py) or a state machine's task (the definitions).
        skip_checkov(self, "CKV_AWS_115", UNRESERVED)
        skip_checkov(self, "CKV_AWS_117", OUTSIDE_VPC)
