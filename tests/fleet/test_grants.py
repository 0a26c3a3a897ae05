"""The release controller's grants name no fleet: scoped by the fleets' tag and the
environment's name prefixes (phoenix/fleet/grants.py), so a role's policy is the same for
one fleet (sandbox) as for three (production), and for five hundred (bench/scale.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import SynthesizedApp

STACKS = {"sandbox": "phoenix-sandbox", "production": "phoenix-production"}
TAGGED = {"StringLike": {"aws:ResourceTag/phoenix:fleet": "{env}/*"}}
# the calls that change a fleet, each allowed only on resources tagged as a fleet's
TAG_SCOPED = {
    "autoscaling:UpdateAutoScalingGroup",
    "ec2:CreateLaunchTemplateVersion",
    "iam:PassRole",
    "elasticloadbalancing:ModifyListener",
}


def _controller_policies(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The release controller's roles' policies (the Release and Rollback constructs')."""
    roles = {
        name
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and name.startswith("Release")
    }
    return {
        name: r["Properties"]["PolicyDocument"]["Statement"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy"
        and {ref["Ref"] for ref in r["Properties"]["Roles"]} & roles
    }


@pytest.mark.parametrize("environment", sorted(STACKS))
def test_no_controller_grant_names_a_fleet_resource(
    synthesized: SynthesizedApp, environment: str
) -> None:
    template = synthesized.template(STACKS[environment])
    fleets = tuple(
        f"Fleet{f.name.replace('-', '')}" for f in synthesized.configs[environment].fleets
    )
    for policy, statements in _controller_policies(template).items():
        written = json.dumps(statements)
        assert not [f for f in fleets if f'"{f}' in written], policy


@pytest.mark.parametrize("environment", sorted(STACKS))
def test_every_fleet_write_is_limited_to_resources_tagged_as_the_environment_s_fleets(
    synthesized: SynthesizedApp, environment: str
) -> None:
    template = synthesized.template(STACKS[environment])
    tagged = json.loads(json.dumps(TAGGED).replace("{env}", environment))
    found = set()
    for statements in _controller_policies(template).values():
        for statement in statements:
            actions = statement["Action"]
            actions = {actions} if isinstance(actions, str) else set(actions)
            for action in actions & TAG_SCOPED:
                found.add(action)
                condition = statement.get("Condition", {})
                assert condition.get("StringLike") == tagged["StringLike"], (action, statement)
    assert found == TAG_SCOPED


def test_the_controller_s_policies_are_the_same_for_one_fleet_and_three(
    synthesized: SynthesizedApp,
) -> None:
    def shape(environment: str) -> dict[str, int]:
        template = synthesized.template(STACKS[environment])
        policies = _controller_policies(template)
        return {name: len(statements) for name, statements in sorted(policies.items())}

    sandbox, production = shape("sandbox"), shape("production")
    assert sandbox == production
