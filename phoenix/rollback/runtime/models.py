"""What the rollback function knows of a fleet."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, Json

from phoenix.kernel.models import FleetName, FrozenModel, SlotSpec, Strategy
from phoenix.kernel.names import Slot
from phoenix.kernel.settings import ReleaseSettings


class RollbackFleet(FrozenModel):
    """What the rollback function knows of a fleet (in its settings)."""

    name: FleetName
    strategy: Strategy
    listener: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:")]
    slots: dict[Slot, SlotSpec]


class RollbackSettings(ReleaseSettings):
    state_machine_arn: str
    # An alarm rolls back a release that ended at most this long ago (requests: any).
    alarm_rollback_horizon_hours: Annotated[int, Field(ge=1, le=720)] = 24
    # fleet name -> RollbackFleet fields (validated when used: at synthesis they hold
    # CloudFormation references, not ARNs yet)
    fleets: Json[dict[str, dict[str, Any]]]

    def fleet(self, name: str) -> RollbackFleet:
        return RollbackFleet.model_validate(self.fleets[name])
