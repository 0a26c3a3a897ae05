"""What the rollback function knows of a fleet."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from phoenix.kernel.models import FleetName, FrozenModel, SlotSpec, Strategy
from phoenix.kernel.names import Slot


class RollbackFleet(FrozenModel):
    """What the rollback function knows of a fleet (in its settings)."""

    name: FleetName
    strategy: Strategy
    listener: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:")]
    slots: dict[Slot, SlotSpec]
