"""The fleet registry as synthesized: each fleet's parameter and the spec it holds."""

from __future__ import annotations

import json
from typing import Any

REFERENCE = "<ref>"  # what a CloudFormation reference in a spec reads as here


def registered(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Registry parameter name -> its properties, in one synthesized template."""
    return {
        r["Properties"]["Name"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter"
        and str(r["Properties"].get("Name", "")).startswith("/phoenix-fleets/")
    }


def spec_text(value: Any, reference: str = REFERENCE) -> str:
    """A parameter's value with each CloudFormation reference in it as `reference`."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return separator.join(p if isinstance(p, str) else reference for p in parts)


def registered_spec(template: dict[str, Any], environment: str, fleet: str) -> dict[str, Any]:
    """The spec the registry holds for `fleet`, references as REFERENCE."""
    value = registered(template)[f"/phoenix-fleets/{environment}/{fleet}"]["Value"]
    spec: dict[str, Any] = json.loads(spec_text(value))
    return spec
