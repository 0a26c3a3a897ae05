"""What every component's runtime says of a fleet: its strategy, AMIs and slots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from phoenix.kernel.names import Slot

Strategy = Literal["rolling", "blue_green", "canary"]
AmiId = Annotated[str, Field(pattern=r"^ami-[0-9a-f]{8,17}$")]
FleetName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,23}$")]
Percent = Annotated[int, Field(ge=0, le=100)]


class FrozenModel(BaseModel):
    """A value that travels between steps: immutable, and no key it does not declare."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SlotSpec(FrozenModel):
    group: Annotated[str, Field(min_length=1)]
    target_group: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:")]
    launch_template: Annotated[str, Field(pattern=r"^lt-[0-9a-f]+$")]


class ServingFleet(FrozenModel):
    """A fleet as the functions that move its traffic know it, from the registry: its
    listener and slots (the rollback function, the release cleanup)."""

    name: FleetName
    strategy: Strategy
    listener: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:")]
    slots: dict[Slot, SlotSpec]

    @classmethod
    def of_spec(cls, spec: Mapping[str, Any]) -> ServingFleet:
        """The serving part of a fleet's registry spec (phoenix.kernel.registry)."""
        return cls.model_validate({key: spec.get(key) for key in cls.model_fields})
