"""An environment of many fleets (production's three copied to 30, synthesized once, with
cdk-nag as app.py applies it): fleets beyond the region stack's share go to fleet stacks,
no stack nears CloudFormation's 500 resources, every fleet is registered once with the
stack that deploys it, and the release controller is the same as with three fleets.
bench/scale.py measures the same up to 500 fleets."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from app import add_environments, cli_context, new_app
from phoenix.config.environment import EnvironmentConfig
from phoenix.stage import FLEETS_PER_STACK, MAIN_STACK_FLEETS
from tests.conftest import SynthesizedApp
from tests.release.registry import registered, registered_spec

FLEETS = 30
LIMIT = 400  # the bound; CloudFormation's is 500


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory, synthesized: SynthesizedApp) -> SynthesizedApp:
    raw = synthesized.configs["production"].model_dump(mode="json")
    base = raw["fleets"]
    # each with HTTPS, the most resources a fleet has (a redirecting HTTP listener too)
    https = {"certificate_arn": "arn:aws:acm:us-east-1:111122223333:certificate/example"}
    copies = [base[n % len(base)] for n in range(FLEETS)]
    raw["fleets"] = [
        fleet | https | {"name": f"{fleet['name']}{n}"} for n, fleet in enumerate(copies)
    ]
    # production's plan over the copies: the first alone, then the rest
    names = [fleet["name"] for fleet in raw["fleets"]]
    one_box, rest = raw["plans"][0]["waves"]
    raw["plans"][0]["waves"] = [one_box | {"fleets": names[:1]}, rest | {"fleets": names[1:]}]
    config = EnvironmentConfig.model_validate(raw)
    app = new_app(outdir=str(tmp_path_factory.mktemp("cdk.out.many")), context=cli_context())
    add_environments(app, [config])
    return SynthesizedApp(app=app, assembly=app.synth(), configs={"production": config})


def _templates(app: SynthesizedApp) -> dict[str, dict[str, Any]]:
    return {a.stack_name: a.template for a in app.stack_artifacts()}


def test_fleets_beyond_the_region_stack_s_share_are_in_fleet_stacks(many: SynthesizedApp) -> None:
    templates = _templates(many)
    groups = -(-(FLEETS - MAIN_STACK_FLEETS) // FLEETS_PER_STACK)
    for region_stack in ("phoenix-production", "phoenix-production-us-west-2"):
        expected = {region_stack, f"{region_stack}-state"}
        for n in range(1, groups + 1):
            expected |= {f"{region_stack}-fleets-{n}", f"{region_stack}-fleets-{n}-state"}
        assert expected <= set(templates)
    sizes = {name: len(t["Resources"]) for name, t in templates.items()}
    assert max(sizes.values()) <= LIMIT, sizes


def test_each_fleet_is_registered_once_a_region_with_the_stack_that_deploys_it(
    many: SynthesizedApp,
) -> None:
    templates = _templates(many)
    for region_stack in ("phoenix-production", "phoenix-production-us-west-2"):
        mine = {
            n: t
            for n, t in templates.items()
            if n == region_stack or n.startswith(f"{region_stack}-fleets-")
        }
        where = Counter(name.rsplit("/", 1)[1] for t in mine.values() for name in registered(t))
        assert where == Counter(f.name for f in many.configs["production"].fleets)
        for stack, template in mine.items():
            for name in registered(template):
                fleet = name.rsplit("/", 1)[1]
                assert registered_spec(template, "production", fleet)["stack"] == stack


def test_the_controller_is_the_same_as_with_three_fleets(
    many: SynthesizedApp, synthesized: SynthesizedApp
) -> None:
    def controller(template: dict[str, Any]) -> dict[str, Any]:
        return {
            name: resource
            for name, resource in template["Resources"].items()
            if name.startswith("Release")
        }

    three = controller(synthesized.template("phoenix-production"))
    thirty = controller(_templates(many)["phoenix-production"])
    assert json.dumps(thirty, sort_keys=True) == json.dumps(three, sort_keys=True)
