"""The settings of the release functions that are not steps (the steps' are the
kernel's ReleaseSettings): one model each, read by the construct and the handler."""

from __future__ import annotations

from pydantic import Field, Json

from phoenix.kernel.settings import FunctionSettings, ReleaseSettings


class TriggerSettings(FunctionSettings):
    state_machine_arn: str
    # Where the images are baked, so where GetImage reads them: the primary region, also
    # for a disaster recovery region's trigger (Image Builder copies the AMIs, the image
    # itself lives only where it was built). Empty: the function's own region.
    image_region: str = ""
    # This region's stack (its ID): a deploy of it that ends UPDATE_COMPLETE releases
    # what it changed.
    stack_id: str = ""
    # The start of the names of its fleet stacks (`phoenix-<env>[-<region>]-fleets-`):
    # a deploy of one releases what it changed in its fleets.
    fleet_stacks: str = ""
    # Image pipeline -> the release plan its images go through (docs/adr/0011); such an
    # image starts one plan execution (in the primary region, `runs_plans`), not a
    # release per fleet. A DR region's trigger leaves those images to the primary's plan.
    plans: Json[dict[str, str]] = Field(default_factory=dict)
    runs_plans: bool = False
    # The plans' state machines' ARNs start with this (`...:stateMachine:phoenix-<env>-plan-`).
    plan_state_machine_prefix: str = ""
    # The earlier environment whose succeeded plans start this one's (a promotion,
    # docs/adr/0012-promotion.md); empty: none.
    promoted_from: str = ""
    # Set by the Lambda runtime (a reserved variable), so never part of the environment
    # the infrastructure writes.
    region: str = Field(default="", alias="AWS_REGION", exclude=True)

    @property
    def images_in(self) -> str:
        """The region of the images this trigger releases (and of its GetImage calls)."""
        return self.image_region or self.region


class RefreshEventSettings(ReleaseSettings):
    """No per-fleet data: a group's fleet is in its name (names.fleet_of_group)."""
