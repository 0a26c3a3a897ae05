"""Config validation: every bad input stops synthesis with one line naming file, field, value."""

from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from app import CONFIG_DIR
from phoenix.config.environment import (
    CanarySettings,
    ConfigError,
    EnvironmentConfig,
    load_environment,
)

REPO = Path(__file__).resolve().parents[2]
SANDBOX: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "sandbox.yaml").read_text())


def _sandbox_with(change: Any) -> dict[str, Any]:
    config = copy.deepcopy(SANDBOX)
    change(config)
    return config


# A custom metric the canary judgment reads (docs/judgment.md), for the cases below.
CUSTOM_METRIC = {
    "name": "failed checkouts",
    "namespace": "Shop",
    "metric": "CheckoutFailureRate",
    "statistic": "Average",
    "dimensions": {"AutoScalingGroupName": "{auto_scaling_group}"},
}
BAD_CONFIGS = {
    "unknown strategy": (
        lambda c: c["fleets"][0].update(strategy="bluegreen"),
        "fleets[0].strategy: 'bluegreen': must be one of rolling, blue_green, canary",
    ),
    "canary steps not ending at 100": (
        lambda c: c["fleets"][0]["canary"].update(steps=[5, 25, 50]),
        "fleets[0].canary.steps: [5, 25, 50]: must end at 100",
    ),
    "canary steps going back": (
        lambda c: c["fleets"][0]["canary"].update(steps=[50, 25, 100]),
        "fleets[0].canary.steps: [50, 25, 100]: must be strictly increasing",
    ),
    "bad CIDR": (
        lambda c: c["network"].update(cidr="10.0.0.300/16"),
        "network.cidr: '10.0.0.300/16': is not an IPv4 CIDR block",
    ),
    "public CIDR": (
        lambda c: c["network"].update(cidr="8.8.0.0/16"),
        "network.cidr: '8.8.0.0/16': must be a private (RFC 1918) range",
    ),
    "duplicate fleet names": (
        lambda c: c["fleets"].append(copy.deepcopy(c["fleets"][0])),
        "fleets: 'web' appears more than once",
    ),
    "min above max": (
        lambda c: c["fleets"][0].update(capacity={"min": 5, "max": 2}),
        "fleets[0].capacity: min (5) is greater than max (2)",
    ),
    "unknown key in a fleet": (
        lambda c: c["fleets"][0].update(colour="blue"),
        "fleets[0].colour: 'blue': is not a known setting",
    ),
    "unknown top-level key": (
        lambda c: c.update(vpc_id="vpc-123"),
        "vpc_id: 'vpc-123': is not a known setting",
    ),
    "missing network": (lambda c: c.pop("network"), "network: is required"),
    "fleet on an unknown pipeline": (
        lambda c: c["fleets"][0].update(image_pipeline="silver"),
        "fleets[0].image_pipeline: 'silver' is not one of the image_pipelines ['golden']",
    ),
    "more NAT gateways than zones": (
        lambda c: c["network"].update(nat_gateways=3),
        "network: nat_gateways (3) cannot exceed availability_zones (2)",
    ),
    "subnets without an existing VPC": (
        lambda c: c["network"].update(public_subnet_ids=["subnet-0123456789abcdef0"]),
        "network: public_subnet_ids: only with vpc_id (an existing VPC)",
    ),
    "existing VPC short of subnets": (
        lambda c: c["network"].update(
            vpc_id="vpc-0123456789abcdef0",
            public_subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
            private_subnet_ids=["subnet-0123456789abcdef2"],
        ),
        "network: private_subnet_ids: an existing VPC needs one subnet per availability zone "
        "(2), got 1",
    ),
    "unknown Inspector severity": (
        lambda c: c["image_pipelines"][0].update(fail_on_severity="SEVERE"),
        "image_pipelines[0].fail_on_severity: 'SEVERE': Input should be 'CRITICAL', 'HIGH', "
        "'MEDIUM' or 'LOW'",
    ),
    "too few images kept for rollback": (
        lambda c: c["image_pipelines"][0].update(keep_images=2),
        "image_pipelines[0].keep_images: 2: Input should be greater than or equal to 3",
    ),
    "a judged metric's weight above 100": (
        lambda c: c["fleets"][0]["canary"].update(judgment={"errors": {"weight": 150}}),
        "fleets[0].canary.judgment.errors.weight: 150: Input should be less than or equal to 100",
    ),
    "a marginal score above the pass score": (
        lambda c: c["fleets"][0]["canary"].update(
            judgment={"pass_score": 80, "marginal_score": 90}
        ),
        "fleets[0].canary.judgment: marginal_score (90) is above pass_score (80)",
    ),
    "a marginal step neither failed nor held": (
        lambda c: c["fleets"][0]["canary"].update(judgment={"when_marginal": "wait"}),
        "fleets[0].canary.judgment.when_marginal: 'wait': Input should be 'fail' or 'hold'",
    ),
    "a canary that could outlast its lock": (
        lambda c: c["fleets"][0]["canary"].update(
            steps=[5, 25, 50, 100],
            step_bake_time_minutes=10,
            judgment={"when_marginal": "hold", "approval_timeout_minutes": 240},
        ),
        "fleets[0].canary: 4 steps of up to 260 minutes each (bake, extensions, approval) "
        "take up to 1040 minutes, more than the 360 a release may hold its fleet",
    ),
    "a custom metric's unknown statistic": (
        lambda c: c["fleets"][0]["canary"].update(
            judgment={"metrics": [dict(CUSTOM_METRIC, statistic="Median")]}
        ),
        "fleets[0].canary.judgment.metrics[0].statistic: 'Median': unknown statistic "
        "'Median': one of SampleCount, Average, Sum, Minimum, Maximum or a percentile such "
        "as p99 or p99.9",
    ),
    "a custom metric with no dimension to fill": (
        lambda c: c["fleets"][0]["canary"].update(
            judgment={"metrics": [dict(CUSTOM_METRIC, dimensions={"Service": "shop"})]}
        ),
        "fleets[0].canary.judgment.metrics[0].dimensions: no dimension to fill: Service=shop "
        "names no slot ({target_group}, {load_balancer}, "
        "{auto_scaling_group}), so the canary and the baseline would read the same series",
    ),
    "a custom metric's unknown placeholder": (
        lambda c: c["fleets"][0]["canary"].update(
            judgment={"metrics": [dict(CUSTOM_METRIC, dimensions={"Host": "{instance}"})]}
        ),
        "dimension Host is '{instance}': a placeholder is one of {target_group}, "
        "{load_balancer}, {auto_scaling_group}, alone",
    ),
    "a custom metric named as a built-in one": (
        lambda c: c["fleets"][0]["canary"].update(
            judgment={"metrics": [dict(CUSTOM_METRIC, name="p99 latency")]}
        ),
        "fleets[0].canary.judgment: metrics: the name 'p99 latency' is the built-in metric's",
    ),
    "a custom metric's weight above 100": (
        lambda c: c["fleets"][0]["canary"].update(
            judgment={"metrics": [dict(CUSTOM_METRIC, weight=101)]}
        ),
        "fleets[0].canary.judgment.metrics[0].weight: 101: Input should be less than or equal "
        "to 100",
    ),
    "a pre-traffic hook that is no function's name": (
        lambda c: c["fleets"][0].update(pre_traffic_hook={"function": "smoke test!"}),
        "fleets[0].pre_traffic_hook.function: 'smoke test!'",
    ),
    "a pre-traffic hook waiting longer than Lambda runs": (
        lambda c: c["fleets"][0].update(
            pre_traffic_hook={"function": "smoke", "timeout_seconds": 900}
        ),
        "fleets[0].pre_traffic_hook.timeout_seconds: 900: Input should be less than or equal "
        "to 840",
    ),
    "a canary step too short to judge": (
        lambda c: c["fleets"][0]["canary"].update(step_bake_time_minutes=2),
        "fleets[0].canary: step_bake_time_minutes (2) holds fewer whole one-minute periods "
        "than judgment.min_periods (4): it needs one minute more",
    ),
    "log retention CloudWatch does not offer": (
        lambda c: c["functions"].update(log_retention_days=31),
        "functions.log_retention_days: 31: must be one of the CloudWatch Logs retention periods",
    ),
}


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=list(BAD_CONFIGS))
def test_bad_config_is_refused_with_one_line_naming_file_field_and_value(
    case: str, tmp_path: Path
) -> None:
    # Given the sandbox config with one bad change
    change, expected = BAD_CONFIGS[case]
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(_sandbox_with(change)))

    # When it is loaded
    with pytest.raises(ConfigError) as raised:
        load_environment("broken", tmp_path)

    # Then the one-line message names the file, the field and the value
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'broken.yaml'}: ")
    assert expected in message


def test_missing_environment_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no such environment 'nope'; known: .*sandbox"):
        load_environment("nope", CONFIG_DIR)


def test_malformed_yaml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("fleets: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_environment("broken", tmp_path)


def test_the_shipped_configs_are_valid_and_cover_every_strategy(
    environment_configs: dict[str, EnvironmentConfig],
) -> None:
    assert environment_configs["sandbox"].region is None  # environment-agnostic
    assert [f.strategy for f in environment_configs["sandbox"].fleets] == ["canary"]
    production = environment_configs["production"]
    assert len(production.regions) == 2
    assert {f.strategy for f in production.fleets} == {"rolling", "blue_green", "canary"}


@given(st.lists(st.integers(min_value=1, max_value=99), unique=True, max_size=6))
def test_any_increasing_canary_steps_ending_at_100_are_accepted(steps: list[int]) -> None:
    ordered = [*sorted(steps), 100]
    assert CanarySettings(steps=ordered).steps == ordered


@given(st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=6))
def test_canary_steps_that_do_not_rise_to_100_are_refused(steps: list[int]) -> None:
    rising_to_100 = steps[-1] == 100 and all(a < b for a, b in itertools.pairwise(steps))
    if rising_to_100:
        assert CanarySettings(steps=steps).steps == steps
    else:
        with pytest.raises(ValueError, match="must"):
            CanarySettings(steps=steps)


def test_synth_with_a_broken_config_exits_with_one_line_and_writes_no_template(
    tmp_path: Path,
) -> None:
    # Given a config whose only fleet has an unknown strategy
    configs = tmp_path / "configs"
    configs.mkdir()
    broken = _sandbox_with(lambda c: c["fleets"][0].update(strategy="yolo"))
    (configs / "broken.yaml").write_text(yaml.safe_dump(broken))
    outdir = tmp_path / "cdk.out"

    # When the CDK app runs as the CLI runs it
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env={
            **os.environ,
            "CDK_OUTDIR": str(outdir),
            "CDK_CONTEXT_JSON": json.dumps({"env": "broken", "config_dir": str(configs)}),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it fails with one line naming file, field and value, and writes no template
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"phoenix: invalid config: {configs / 'broken.yaml'}: "
        "fleets[0].strategy: 'yolo': must be one of rolling, blue_green, canary"
    ]
    assert not list(outdir.glob("**/*.template.json"))


def test_a_short_canary_step_is_valid_when_its_latency_is_not_judged(tmp_path: Path) -> None:
    # (per-minute latency needs whole minutes; the 5xx rate needs only requests)
    short = {"step_bake_time_minutes": 1, "judgment": {"latency": {"weight": 0}}}
    config = _sandbox_with(lambda c: c["fleets"][0]["canary"].update(short))
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(config))
    loaded = load_environment("short", tmp_path)
    assert loaded.fleets[0].canary.step_bake_time_minutes == 1  # type: ignore[union-attr]
