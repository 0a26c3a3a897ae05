"""The fleet registry: one CloudFormation-owned parameter per fleet holds what the release
controller knows of it; no function's environment and no state machine definition holds
anything per fleet; and the kernel's readers ask SSM for only what an event needs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_cdk.aws_ssm import ParameterTier
from moto import mock_aws

from phoenix.config.fleet import CUSTOM_METRICS_BYTES
from phoenix.kernel import registry
from phoenix.release.handlers import cleanup
from phoenix.release.runtime.models import FleetSpec
from phoenix.release.spec import LONGEST_REFERENCE, STANDARD_VALUE_LIMIT, registry_tier
from tests.conftest import SynthesizedApp
from tests.release.registry import registered, registered_spec, spec_text
from tests.release.release_state import CREDENTIALS, StubbedAws, expect_registered, fleet_spec
from tests.release.test_release_cleanup import SETTINGS as CLEANUP_SETTINGS
from tests.release.test_release_cleanup import status_change

# SSM's standard parameters hold at most 4 KB, advanced ones 8 KB (AWS Systems Manager User
# Guide, "Managing parameter tiers").
ADVANCED_VALUE_LIMIT = 8192
STACKS = {"sandbox": ["phoenix-sandbox"], "production": ["phoenix-production"]}
STACKS["production"].append("phoenix-production-us-west-2")


@pytest.mark.parametrize("environment", sorted(STACKS))
def test_each_fleet_is_registered_once_per_region_with_a_spec_the_steps_accept(
    synthesized: SynthesizedApp, environment: str
) -> None:
    config = synthesized.configs[environment]
    for stack in STACKS[environment]:
        template = synthesized.template(stack)
        found = registered(template)
        assert sorted(found) == sorted(
            f"/phoenix-fleets/{environment}/{f.name}" for f in config.fleets
        )
        for fleet in config.fleets:
            spec = registered_spec(template, environment, fleet.name)
            assert (spec["name"], spec["strategy"]) == (fleet.name, fleet.strategy)
            assert spec["image_pipeline"] == fleet.image_pipeline
            resolved = {"listener": "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/b/c"}
            target = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/0"
            slots = {
                s: {"group": "g", "target_group": target, "launch_template": "lt-0a"}
                for s in spec["slots"]
            }
            assert FleetSpec.model_validate(spec | resolved | {"slots": slots})
            properties = found[f"/phoenix-fleets/{environment}/{fleet.name}"]
            assert (properties["Type"], properties["Tier"]) == ("String", "Standard")
            longest = spec_text(properties["Value"], LONGEST_REFERENCE)
            assert len(longest) < STANDARD_VALUE_LIMIT, (fleet.name, len(longest))
            # with custom metrics as large as the config allows, it fits an advanced one
            assert len(longest) + CUSTOM_METRICS_BYTES < ADVANCED_VALUE_LIMIT


def test_a_spec_that_may_outgrow_4_kb_is_registered_as_an_advanced_parameter() -> None:
    small = {"name": "web", "listener": "x" * 3000}
    assert registry_tier(small) == ParameterTier.STANDARD
    assert registry_tier(small | {"judgment": {"metrics": ["y" * 1100]}}) == ParameterTier.ADVANCED


@pytest.mark.parametrize("environment", sorted(STACKS))
def test_no_function_environment_and_no_definition_holds_a_fleet(
    synthesized: SynthesizedApp, environment: str
) -> None:
    config = synthesized.configs[environment]
    for stack in STACKS[environment]:
        template = synthesized.template(stack)
        for kind in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine"):
            for name, resource in template["Resources"].items():
                if resource["Type"] != kind:
                    continue
                held = json.dumps(
                    resource["Properties"].get("Environment", {})
                    if kind == "AWS::Lambda::Function"
                    else resource["Properties"]["DefinitionString"]
                )
                # a fleet's name appears only inside another name (a stack, a resource)
                quoted = [f for f in config.fleets if f'"{f.name}"' in held or f"-{f.name}" in held]
                assert quoted == [], (name, [f.name for f in quoted])
                assert "Fleet-" not in held, name


# --- the kernel's readers, against moto's SSM ---------------------------------------------


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ssm", region_name="us-east-1", **CREDENTIALS)
        for name in ("web", "web-api", "worker", *(f"batch-{n:02}" for n in range(21))):
            value = json.dumps(fleet_spec(name=name))
            client.put_parameter(Name=f"/phoenix-fleets/sandbox/{name}", Value=value, Type="String")
        client.put_parameter(Name="/phoenix-fleets/production/web", Value="{}", Type="String")
        yield client


def _counted(client: Any) -> list[str]:
    calls: list[str] = []
    client.meta.events.register("before-call.ssm", lambda model, **_: calls.append(model.name))
    return calls


def test_the_whole_registry_is_read_by_path_ten_a_page(ssm: Any) -> None:
    calls = _counted(ssm)
    found = registry.read_registry(ssm, "sandbox")
    assert sorted(found) == sorted(
        ["web", "web-api", "worker", *(f"batch-{n:02}" for n in range(21))]
    )
    assert calls == ["GetParametersByPath"] * 3  # 24 fleets


def test_fleets_are_read_by_name_ten_a_call_and_unknown_names_left_out(ssm: Any) -> None:
    calls = _counted(ssm)
    names = ["web", "nosuch", "Not A Name", *(f"batch-{n:02}" for n in range(12))]
    found = registry.read_fleets(ssm, "sandbox", names)
    assert sorted(found) == sorted(["web", *(f"batch-{n:02}" for n in range(12))])
    assert calls == ["GetParameters"] * 2  # 13 valid names
    assert registry.read_fleet(ssm, "sandbox", "nosuch") is None


@pytest.mark.parametrize(
    ("alarm", "fleet", "rest"),
    [
        ("phoenix-sandbox-web-5xx-rate", "web", "5xx-rate"),
        ("phoenix-sandbox-web-api-blue-p99-latency", "web-api", "blue-p99-latency"),
        ("phoenix-sandbox-worker-unhealthy-hosts", "worker", "unhealthy-hosts"),
    ],
)
def test_an_alarm_s_fleet_is_the_longest_registered_name_it_starts_with(
    ssm: Any, alarm: str, fleet: str, rest: str
) -> None:
    calls = _counted(ssm)
    found = registry.fleet_of_resource(ssm, "sandbox", alarm)
    assert found is not None
    assert (found[0]["name"], found[1]) == (fleet, rest)
    assert calls == ["GetParameters"]


@pytest.mark.parametrize(
    "alarm", ["phoenix-production-web-5xx-rate", "phoenix-sandbox-webby-5xx", "phoenix-sandbox-web"]
)
def test_an_alarm_of_no_registered_fleet_has_none(ssm: Any, alarm: str) -> None:
    assert registry.fleet_of_resource(ssm, "sandbox", alarm) is None


def test_the_cleanup_refuses_an_execution_of_a_fleet_the_registry_does_not_hold() -> None:
    aws = StubbedAws()
    expect_registered(aws, None)
    result = cleanup.handle(status_change(), CLEANUP_SETTINGS, aws.clients)
    assert result == {"action": "refused", "reason": "no fleet 'web' in sandbox"}
    assert aws.calls == ["ssm.GetParameters"]
    aws.verify()
