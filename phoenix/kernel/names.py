"""Names shared by the infrastructure and the release controller.

The controller-owned state of a fleet lives in SSM parameters under
`/phoenix/<environment>/<fleet>/`; templates read them through deploy-time dynamic
references and the controller writes them (docs/adr/0004-controller-owned-state.md).
What the controller knows of each fleet (its spec) is in the fleet registry, under
`/phoenix-fleets/<environment>/`: written by CloudFormation, read by the controller,
never written by it (docs/adr/0009-fleet-registry.md).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Literal

Slot = Literal["blue", "green"]
# The order a fleet's template forwards to its slots' target groups (FleetConfig.slots),
# which each ModifyListener of the controller keeps: drift detection compares a
# listener's actions in order.
LISTENER_ORDER: tuple[Slot, ...] = ("blue", "green")


def in_listener_order(slots: Collection[str]) -> list[Slot]:
    """The slots among `slots` in the order the fleet's template forwards to them (not
    the order of a mapping that went through JSON and Step Functions)."""
    return [slot for slot in LISTENER_ORDER if slot in slots]


# Every fleet resource's tag (instances too, propagated by their groups): `<env>/<fleet>`.
FLEET_TAG = "phoenix:fleet"
SlotSetting = Literal["min-size", "launch-template-version", "weight"]


# A fleet stack's name: `phoenix-<env>[-<region>]-fleets-<n>` (phoenix/stage.py).
FLEET_STACKS = "-fleets-"


def fleet_prefix(environment: str, fleet: str) -> str:
    return f"/phoenix/{environment}/{fleet}"


def release_pointer(environment: str, fleet: str) -> str:
    """The SSM parameter holding the fleet's last known good AMI."""
    return f"{fleet_prefix(environment, fleet)}/ami"


def slot_parameter(environment: str, fleet: str, slot: Slot, setting: SlotSetting) -> str:
    """The SSM parameter holding one controller-owned setting of a slot."""
    return f"{fleet_prefix(environment, fleet)}/{slot}/{setting}"


def fleet_registry(environment: str) -> str:
    """The path of the environment's fleet registry: one parameter per fleet."""
    return f"/phoenix-fleets/{environment}"


def environment_record(environment: str) -> str:
    """The SSM parameter that tells the `phoenix` CLI where an environment's controller
    is in a region: its ledger table, release state machine and topic (JSON)."""
    return f"/phoenix-environments/{environment}"


def registered_fleet(environment: str, fleet: str) -> str:
    """The registry parameter holding a fleet's spec."""
    return f"{fleet_registry(environment)}/{fleet}"


def resource_name(environment: str, fleet: str, *parts: str) -> str:
    """`phoenix-<env>-<fleet>[-part...]`: Auto Scaling groups, alarms."""
    return "-".join(("phoenix", environment, fleet, *parts))


def fleet_of_group(environment: str, group: str) -> str | None:
    """The fleet whose slot `group` is (`phoenix-<env>-<fleet>-<slot>`, as the fleet
    names its groups), or None for a group that is no slot of this environment."""
    prefix = f"phoenix-{environment}-"
    for slot in ("blue", "green"):
        suffix = f"-{slot}"
        if group.startswith(prefix) and group.endswith(suffix):
            fleet = group[len(prefix) : -len(suffix)]
            return fleet or None
    return None


def image_name(environment: str, pipeline: str) -> str:
    """The name of a pipeline's images (and recipe): `phoenix-<env>-<pipeline>`."""
    return f"phoenix-{environment}-{pipeline}"


_EXECUTION_NAME = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(*parts: str) -> str:
    """A Step Functions execution name from `parts`, joined by `-`: deterministic, so
    that starting it twice is refused (ExecutionAlreadyExists) and a duplicate event acts
    once; characters a name may not hold become `-`, and it keeps its first 80."""
    return _EXECUTION_NAME.sub("-", "-".join(parts))[:80]


def environment_key(environment: str) -> str:
    """The parameter holding the ARN of the environment's key in a region (a later
    environment in another account grants its Auto Scaling role the use of it)."""
    return f"/phoenix-keys/{environment}"


def release_state_machine(environment: str) -> str:
    return f"phoenix-{environment}-release"


def plan_state_machine(environment: str, plan: str) -> str:
    """The state machine that runs a release plan's waves (docs/adr/0011)."""
    return f"phoenix-{environment}-plan-{plan}"


# The tag a function carries, with its environment's name as value, for that environment's
# releases to invoke it as a fleet's pre-traffic hook (docs/release.md, Pre-traffic tests).
HOOK_TAG = "phoenix:pre-traffic-hook"
