"""Session fixtures: every phoenix app is synthesized once per test session."""

from __future__ import annotations

import os

# Before jsii starts node: this machine's node 20 is past end of life, and the banner
# jsii prints about it on every start would bury the test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import cx_api

from app import CONFIG_DIR, add_environments, cli_context, new_app
from local import memo
from phoenix.config.environment import EnvironmentConfig, available_environments, load_environment
from phoenix.kernel.clients import forget_clients
from phoenix.stage import PhoenixStack, PhoenixStage

# Every test's mocked world starts without a boto3 session; the sessions made share one
# botocore loader, so no test parses a service's model again (local/memo.py).
memo.install()


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """Each test's handlers make their own clients (a handler keeps the clients it made,
    as a warm Lambda execution environment does; one test's mocked AWS is not the next's)."""
    forget_clients()
    yield
    forget_clients()


@dataclass(frozen=True)
class SynthesizedApp:
    """A synthesized app and what tests ask of it."""

    app: cdk.App
    assembly: cx_api.CloudAssembly
    configs: dict[str, EnvironmentConfig]

    def stages(self) -> list[PhoenixStage]:
        return [c for c in self.app.node.children if isinstance(c, PhoenixStage)]

    def stacks(self) -> list[PhoenixStack]:
        return [stack for stage in self.stages() for stack in stage.stacks]

    def stack_artifacts(self) -> Iterator[cx_api.CloudFormationStackArtifact]:
        yield from self.assembly.stacks_recursively

    def template(self, stack_name: str) -> dict[str, Any]:
        for artifact in self.stack_artifacts():
            if artifact.stack_name == stack_name:
                template: dict[str, Any] = artifact.template
                return template
        raise KeyError(stack_name)


@pytest.fixture(scope="session")
def environment_configs() -> dict[str, EnvironmentConfig]:
    return {name: load_environment(name, CONFIG_DIR) for name in available_environments(CONFIG_DIR)}


@pytest.fixture(scope="session")
def synthesized(
    tmp_path_factory: pytest.TempPathFactory, environment_configs: dict[str, EnvironmentConfig]
) -> SynthesizedApp:
    """Every config in config/, synthesized once, with cdk-nag applied as app.py does."""
    outdir: Path = tmp_path_factory.mktemp("cdk.out")
    app = new_app(outdir=str(outdir), context=cli_context())
    add_environments(app, list(environment_configs.values()))
    return SynthesizedApp(app=app, assembly=app.synth(), configs=environment_configs)


# An example promotion order in two accounts (staging -> production).
PROMOTION_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "promotion"


@pytest.fixture(scope="session")
def promotion_synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """examples/promotion's environments, synthesized once, with cdk-nag as app.py does."""
    configs = {
        name: load_environment(name, PROMOTION_EXAMPLE)
        for name in available_environments(PROMOTION_EXAMPLE)
    }
    outdir: Path = tmp_path_factory.mktemp("cdk.out.promotion")
    app = new_app(outdir=str(outdir), context=cli_context())
    add_environments(app, list(configs.values()))
    return SynthesizedApp(app=app, assembly=app.synth(), configs=configs)


@dataclass(frozen=True)
class ChangedSandbox:
    """The sandbox as a later deploy would see it: changed for reasons other than releases."""

    synthesized: SynthesizedApp
    config: EnvironmentConfig


@pytest.fixture(scope="session")
def changed_sandbox(
    tmp_path_factory: pytest.TempPathFactory, environment_configs: dict[str, EnvironmentConfig]
) -> ChangedSandbox:
    """The sandbox with its launch template, listener, groups and bootstrap AMI changed,
    HTTPS on, and a release controller role granted on the fleet. Synthesized once."""
    raw = environment_configs["sandbox"].model_dump(mode="json")
    fleet = raw["fleets"][0]
    fleet |= {
        "instance_type": "t4g.large",
        "bootstrap_ami": "ami-0123456789abcdef0",
        "certificate_arn": "arn:aws:acm:eu-west-1:111122223333:certificate/example",
        "root_volume_gib": 32,
    }
    fleet["capacity"] = {"min": 3, "max": 9}
    fleet["health_check"] |= {"path": "/ready", "interval_seconds": 10}
    fleet["alarms"] |= {"error_rate_percent": 1.5, "p99_latency_ms": 250}
    raw["image_pipelines"][0]["launch_permission_accounts"] = ["111122223333"]
    config = EnvironmentConfig.model_validate(raw)

    outdir: Path = tmp_path_factory.mktemp("cdk.out.changed")
    app = new_app(outdir=str(outdir), context=cli_context())
    add_environments(app, [config])
    (stage,) = [child for child in app.node.children if isinstance(child, PhoenixStage)]
    stack = stage.stacks[0]
    controller = iam.Role(
        stack, "ReleaseController", assumed_by=iam.ServicePrincipal("states.amazonaws.com")
    )
    stack.fleets["web"].grant_release(controller)
    synthesized = SynthesizedApp(app=app, assembly=app.synth(), configs={"sandbox": config})
    return ChangedSandbox(synthesized=synthesized, config=config)
