"""What the rollback function knows of a fleet, and its settings."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from phoenix.kernel.models import ServingFleet
from phoenix.kernel.settings import ReleaseSettings

# What the rollback function knows of a fleet (read from the registry).
RollbackFleet = ServingFleet


class RollbackSettings(ReleaseSettings):
    state_machine_arn: str
    # An alarm rolls back a release that ended at most this long ago (requests: any).
    alarm_rollback_horizon_hours: Annotated[int, Field(ge=1, le=720)] = 24
