"""The plan functions' settings (read by the construct and the handler alike)."""

from __future__ import annotations

from pydantic import Field, Json

from phoenix.kernel.settings import FunctionSettings


class PlanSettings(FunctionSettings):
    table_name: str
    # This region's release state machine; another region's has the same name there.
    release_state_machine_arn: str
    # Promotion (docs/adr/0012-promotion.md): the environments before this one, whose
    # rollbacks refuse an AMI here.
    earlier: Json[list[str]] = Field(default_factory=list)
    # The earlier environment is in another account: this account's Auto Scaling
    # service-linked role is granted the use of its key (each region's) before a wave.
    autoscaling_role_arn: str = ""
    # A later environment is in another account: a succeeded plan names this
    # environment's key in each region (read from this parameter there).
    key_parameter: str = ""
    # Set by the Lambda runtime (a reserved variable), never written by the infrastructure.
    region: str = Field(default="", alias="AWS_REGION", exclude=True)

    def release_state_machine_in(self, region: str) -> str:
        """The release state machine's ARN in `region` (same account and name)."""
        parts = self.release_state_machine_arn.split(":")
        return ":".join([*parts[:3], region, *parts[4:]])
