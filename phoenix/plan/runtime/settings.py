"""The plan functions' settings (read by the construct and the handler alike)."""

from __future__ import annotations

from pydantic import Field

from phoenix.kernel.settings import FunctionSettings


class PlanSettings(FunctionSettings):
    table_name: str
    # This region's release state machine; another region's has the same name there.
    release_state_machine_arn: str
    # Set by the Lambda runtime (a reserved variable), never written by the infrastructure.
    region: str = Field(default="", alias="AWS_REGION", exclude=True)

    def release_state_machine_in(self, region: str) -> str:
        """The release state machine's ARN in `region` (same account and name)."""
        parts = self.release_state_machine_arn.split(":")
        return ":".join([*parts[:3], region, *parts[4:]])
