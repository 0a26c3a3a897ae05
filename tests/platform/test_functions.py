"""The Lambda factory: runtime, layer, tracing, logs, least privilege, typed environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from phoenix.config.environment import LambdaConfig
from phoenix.kernel.settings import FunctionSettings
from phoenix.platform.encryption import EnvironmentKey
from phoenix.platform.functions import PACKAGE_DIR, PhoenixFunction
from tests.iam import granted_actions

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "phoenix" / "probe"
HANDLER = "phoenix.probe.runtime.handler.lambda_handler"


class ProbeSettings(FunctionSettings):
    table_name: str


@dataclass(frozen=True)
class FactoryStack:
    template: dict[str, Any]
    asset_dir: Path
    config: LambdaConfig

    def function_properties(self) -> dict[str, Any]:
        (function,) = Template.from_json(self.template).find_resources("AWS::Lambda::Function")
        properties: dict[str, Any] = self.template["Resources"][function]["Properties"]
        return properties


@pytest.fixture(scope="session")
def factory_stack(tmp_path_factory: pytest.TempPathFactory) -> FactoryStack:
    """One function built by the factory in its own app, synthesized once."""
    # Given a package with the real kernel, the probe component (its runtime and a
    # construct module) and another component's runtime
    source = tmp_path_factory.mktemp("package") / "phoenix"
    source.mkdir()
    shutil.copy2(PACKAGE_DIR / "__init__.py", source / "__init__.py")
    shutil.copytree(PACKAGE_DIR / "kernel", source / "kernel")
    shutil.copytree(FIXTURE, source / "probe")
    for folder in ("probe", "probe/runtime", "other", "other/runtime"):
        (source / folder).mkdir(exist_ok=True)
        (source / folder / "__init__.py").touch()
    (source / "probe" / "construct.py").write_text("import aws_cdk\n")
    (source / "other" / "runtime" / "logic.py").write_text("ANSWER = 42\n")
    (source / "probe" / "runtime" / "__pycache__").mkdir(exist_ok=True)
    (source / "probe" / "runtime" / "__pycache__" / "stale.pyc").write_bytes(b"not code")

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "FactoryTest", env=cdk.Environment(region="eu-west-1"))
    config = LambdaConfig(powertools_layer_version=33, log_retention_days=90)
    PhoenixFunction(
        stack,
        "Probe",
        name="probe",
        handler=HANDLER,
        description="factory test",
        settings=ProbeSettings(
            environment="sandbox", service_name="phoenix-probe", table_name="ledger"
        ),
        config=config,
        key=EnvironmentKey(stack, "Encryption", environment="sandbox").key,
        package_dir=source,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    artifact = app.synth().get_stack_artifact("FactoryTest")
    assets = json.loads((outdir / "FactoryTest.assets.json").read_text())
    (asset,) = [a for a in assets["files"].values() if a["source"]["packaging"] == "zip"]
    return FactoryStack(artifact.template, outdir / asset["source"]["path"], config)


def test_runtime_architecture_and_tracing(factory_stack: FactoryStack) -> None:
    Template.from_json(factory_stack.template).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "TracingConfig": {"Mode": "Active"},
            "Handler": HANDLER,
        },
    )


def test_powertools_layer_is_the_managed_one_for_the_stack_region(
    factory_stack: FactoryStack,
) -> None:
    (layer,) = factory_stack.function_properties()["Layers"]
    assert layer == {
        "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:017000801446:layer:"
        "AWSLambdaPowertoolsPythonV3-python314-arm64:33"
    }


def test_logs_go_to_an_encrypted_group_with_the_configured_retention(
    factory_stack: FactoryStack,
) -> None:
    template = Template.from_json(factory_stack.template)
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"RetentionInDays": factory_stack.config.log_retention_days, "KmsKeyId": Match.any_value()},
    )
    template.has_resource_properties(
        "AWS::Lambda::Function", {"LoggingConfig": {"LogGroup": Match.any_value()}}
    )


def test_role_may_write_only_to_its_own_log_group_and_x_ray(factory_stack: FactoryStack) -> None:
    template = Template.from_json(factory_stack.template)
    role = next(iter(template.find_resources("AWS::IAM::Role").values()))
    assert "ManagedPolicyArns" not in role["Properties"]
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert granted_actions(statements) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    for statement in statements:
        actions = json.dumps(statement["Action"])
        if "logs:" in actions:
            assert statement["Resource"] != "*"


def test_environment_comes_from_the_settings_model(factory_stack: FactoryStack) -> None:
    Template.from_json(factory_stack.template).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": {
                    "PHOENIX_ENVIRONMENT": "sandbox",
                    "PHOENIX_TABLE_NAME": "ledger",
                    "POWERTOOLS_SERVICE_NAME": "phoenix-probe",
                    "POWERTOOLS_METRICS_NAMESPACE": "Phoenix/sandbox",
                    "POWERTOOLS_LOG_LEVEL": "INFO",
                }
            }
        },
    )


def test_package_holds_the_kernel_and_its_components_runtime_only(
    factory_stack: FactoryStack,
) -> None:
    files = {
        p.relative_to(factory_stack.asset_dir).as_posix()
        for p in factory_stack.asset_dir.rglob("*")
        if p.is_file()
    }
    kernel = {
        f"phoenix/{p.relative_to(PACKAGE_DIR).as_posix()}"
        for p in (PACKAGE_DIR / "kernel").glob("*.py")
    }
    assert files == {
        "phoenix/__init__.py",
        "phoenix/probe/__init__.py",
        "phoenix/probe/runtime/__init__.py",
        "phoenix/probe/runtime/handler.py",
        *kernel,
    }


def test_packaged_handler_runs_with_the_environment_the_template_gives_it(
    factory_stack: FactoryStack,
) -> None:
    # Given the function's environment exactly as the template sets it
    variables = factory_stack.function_properties()["Environment"]["Variables"]

    # When the packaged handler is imported from the asset, as Lambda would, and invoked
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from phoenix.probe.runtime.handler import lambda_handler; "
            "print(json.dumps(lambda_handler({}, None)))",
        ],
        cwd=factory_stack.asset_dir,
        env={"PATH": os.environ["PATH"], **variables},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    # Then it reads back the settings the infrastructure gave it
    assert json.loads(result.stdout) == {
        "environment": "sandbox",
        "service_name": "phoenix-probe",
        "metrics_namespace": "Phoenix/sandbox",
        "log_level": "INFO",
        "table_name": "ledger",
    }


@pytest.mark.parametrize(
    ("handler", "refusal"),
    [
        (
            "phoenix.nothere.runtime.handler.lambda_handler",
            r"nothere/runtime/handler\.py is missing",
        ),
        ("phoenix.release.orchestrator.lambda_handler", "is not phoenix.<component>.<runtime"),
        ("functions.probe.handler.lambda_handler", "is not phoenix.<component>.<runtime"),
    ],
)
def test_a_function_without_a_runtime_handler_is_refused(
    tmp_path: Path, handler: str, refusal: str
) -> None:
    stack = cdk.Stack(cdk.App(), "Missing")
    with pytest.raises(ValueError, match=refusal):
        PhoenixFunction(
            stack,
            "Missing",
            name="nothere",
            handler=handler,
            description="x",
            settings=ProbeSettings(environment="e", service_name="s", table_name="t"),
            config=LambdaConfig(),
            key=EnvironmentKey(stack, "K", environment="e").key,
            package_dir=tmp_path / "phoenix",
        )
