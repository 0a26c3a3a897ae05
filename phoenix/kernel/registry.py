"""Reading the fleet registry: one SSM parameter per fleet, its spec as JSON.

CloudFormation writes the registry when it deploys a fleet (phoenix/release/spec.py);
the functions read only what an event needs: one fleet by name, the fleet an alarm
belongs to, or every fleet (an image or a deploy that concerns all of them). Nothing
about fleets is in a function's environment, which Lambda limits to 4 KB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from phoenix.kernel.names import fleet_registry, registered_fleet

if TYPE_CHECKING:
    from types_boto3_ssm.client import SSMClient

# GetParameters takes at most 10 names (SSM API reference, GetParameters: Names), and
# GetParametersByPath returns at most 10 a page (GetParametersByPath: MaxResults).
PARAMETERS_PER_READ = 10
_FLEET_NAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")


def read_parameters(ssm: SSMClient, names: list[str]) -> dict[str, str]:
    """Name -> value of each of `names` that exists (GetParameters, ten names a call, in
    sorted order); one that does not is left out."""
    wanted = sorted(set(names))
    found: dict[str, str] = {}
    for first in range(0, len(wanted), PARAMETERS_PER_READ):
        batch = wanted[first : first + PARAMETERS_PER_READ]
        for parameter in ssm.get_parameters(Names=batch)["Parameters"]:
            found[parameter["Name"]] = str(parameter["Value"])
    return found


def _by_name(values: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Registry values (specs as JSON) by their fleet's name."""
    specs = [json.loads(value) for value in values]
    return {str(spec["name"]): spec for spec in specs}


def read_fleets(ssm: SSMClient, environment: str, fleets: list[str]) -> dict[str, dict[str, Any]]:
    """The specs of `fleets` (GetParameters, ten names a call); a name the registry does
    not hold is left out, and so is one that cannot be a fleet's."""
    names = [registered_fleet(environment, f) for f in fleets if _FLEET_NAME.match(f)]
    return _by_name(read_parameters(ssm, names).values())


def read_fleet(ssm: SSMClient, environment: str, fleet: str) -> dict[str, Any] | None:
    """One fleet's spec, or None when the environment has no such fleet."""
    return read_fleets(ssm, environment, [fleet]).get(fleet)


def read_registry(ssm: SSMClient, environment: str) -> dict[str, dict[str, Any]]:
    """Every fleet's spec (GetParametersByPath, ten a page)."""
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path=fleet_registry(environment),
        Recursive=False,
        PaginationConfig={"PageSize": PARAMETERS_PER_READ},
    )
    return _by_name(str(p["Value"]) for page in pages for p in page["Parameters"])


def fleet_of_resource(
    ssm: SSMClient, environment: str, name: str
) -> tuple[dict[str, Any], str] | None:
    """The fleet a resource named `phoenix-<env>-<fleet>-<rest>` belongs to (an alarm),
    with `<rest>`; None when no fleet of the registry matches. A fleet's name may hold
    hyphens, so each way of splitting the name is a candidate; the longest registered
    one wins, as the names of two fleets may share a prefix."""
    prefix = f"phoenix-{environment}-"
    if not name.startswith(prefix):
        return None
    parts = name.removeprefix(prefix).split("-")
    candidates = {"-".join(parts[:end]): "-".join(parts[end:]) for end in range(1, len(parts))}
    found = read_fleets(ssm, environment, list(candidates))
    if not found:
        return None
    fleet = max(found, key=len)
    return found[fleet], candidates[fleet]
