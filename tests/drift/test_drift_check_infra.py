"""The drift check's stack drift as synthesized (phoenix/drift/drift_check.py,
phoenix/drift/stack_resources.py): the read permissions it is granted are the ones
CloudFormation's resource schemas list (AWS's schemas, as cfn-lint ships them), drift
detection is granted on the region's stacks of fleets only, and each fleet's registry
entry names exactly its resources of the checked types, few enough for one detection."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from local import stack_drift_compare as compare
from phoenix.drift.drift_check import STACK_DRIFT_CALLS
from phoenix.drift.stack_resources import MAX_LOGICAL_IDS, STACK_DRIFT_READS, read_permissions
from phoenix.stage import FLEETS_PER_STACK, MAIN_STACK_FLEETS
from tests.conftest import SynthesizedApp
from tests.iam import actions_of
from tests.iam_reference import bundled_reference

HANDLER = "phoenix.drift.handlers.check.lambda_handler"


@pytest.mark.parametrize("type_name", sorted(STACK_DRIFT_READS))
def test_each_type_s_read_permissions_are_its_resource_schema_s(
    type_name: str,
) -> None:
    """All of them, but those of a service no policy can allow: one the Service
    Authorization Reference does not list."""
    schema = compare.schema("us-east-1", type_name)
    assert schema is not None
    listed = schema["handlers"]["read"]["permissions"]
    services = bundled_reference().service_prefixes
    grantable = {p for p in listed if p.split(":")[0].lower() in services}
    assert set(STACK_DRIFT_READS[type_name]) == grantable


def _statements(template: Template) -> list[dict[str, Any]]:
    (function,) = [
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == HANDLER
    ]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_detection_is_granted_on_the_region_s_stacks_of_fleets_and_reads_on_all(
    synthesized: SynthesizedApp,
) -> None:
    statements = _statements(Template.from_json(synthesized.template("phoenix-production")))
    (detect,) = [s for s in statements if set(actions_of(s)) == set(STACK_DRIFT_CALLS)]
    stacks = sorted(json.dumps(r) for r in detect["Resource"])
    assert [s.split(":stack/")[1] for s in stacks] == [
        'phoenix-production-fleets-*/*"]]}',
        'phoenix-production/*"]]}',
    ]
    (reads,) = [s for s in statements if "autoscaling:Describe*" in actions_of(s)]
    assert reads["Resource"] == "*"
    assert set(read_permissions()) <= set(actions_of(reads))


def _spec(parameter: dict[str, Any]) -> dict[str, Any]:
    """A registry entry's spec, each deploy-time reference as `TOKEN`."""
    value = parameter["Properties"]["Value"]
    if isinstance(value, dict):
        value = "".join(p if isinstance(p, str) else "TOKEN" for p in value["Fn::Join"][1])
    spec: dict[str, Any] = json.loads(value)
    return spec


def test_each_registry_entry_names_its_fleet_s_checked_resources(
    synthesized: SynthesizedApp,
) -> None:
    template = synthesized.template("phoenix-production")
    resources = template["Resources"]
    entries = [
        _spec(r) for r in resources.values()
        if r["Type"] == "AWS::SSM::Parameter" and "drift_resources" in json.dumps(r)
    ]  # fmt: skip
    assert {e["name"] for e in entries} == {"web", "api", "worker"}
    for entry in entries:
        prefix = f"Fleet{entry['name']}"
        checked = sorted(
            logical for logical, r in resources.items()
            if logical.startswith(prefix) and r["Type"] in STACK_DRIFT_READS
        )  # fmt: skip
        assert entry["drift_resources"] == checked
        assert entry["stack"] == "phoenix-production"
    most = max(len(e["drift_resources"]) for e in entries)
    assert most <= 9
    assert 9 * max(FLEETS_PER_STACK, MAIN_STACK_FLEETS) <= MAX_LOGICAL_IDS
