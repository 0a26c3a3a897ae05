"""What the rollback function knows of a fleet."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, Json

from phoenix.kernel.models import ServingFleet
from phoenix.kernel.settings import ReleaseSettings

# What the rollback function knows of a fleet (in its settings).
RollbackFleet = ServingFleet


class RollbackSettings(ReleaseSettings):
    state_machine_arn: str
    # An alarm rolls back a release that ended at most this long ago (requests: any).
    alarm_rollback_horizon_hours: Annotated[int, Field(ge=1, le=720)] = 24
    # fleet name -> RollbackFleet fields (validated when used: at synthesis they hold
    # CloudFormation references, not ARNs yet)
    fleets: Json[dict[str, dict[str, Any]]]

    def fleet(self, name: str) -> RollbackFleet:
        return RollbackFleet.model_validate(self.fleets[name])
