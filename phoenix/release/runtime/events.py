"""The events phoenix receives, as Powertools parser models (EventBridge envelopes)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from phoenix.kernel.events import DetailType, put
from phoenix.release.runtime.models import ReleaseState

if TYPE_CHECKING:
    from types_boto3_events.client import EventBridgeClient

IMAGE_STATE_CHANGE = "EC2 Image Builder Image State Change"


class ImageState(BaseModel):
    status: str
    reason: str | None = None


class ImageStateChangeDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    state: ImageState
    previous_state: ImageState | None = Field(default=None, alias="previous-state")


class ImageStateChange(EventBridgeModel):
    """`EC2 Image Builder Image State Change`: resources[0] is the image build version ARN."""

    source: Literal["aws.imagebuilder"]
    detail_type: str = Field(alias="detail-type", pattern=f"^{re.escape(IMAGE_STATE_CHANGE)}$")
    detail: ImageStateChangeDetail


class ReleaseRequestedDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fleet: str = Field(pattern=r"^[a-z][a-z0-9-]{0,23}$")
    ami: str = Field(pattern=r"^ami-[0-9a-f]{8,17}$")
    requested_by: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=500)


class ReleaseRequested(EventBridgeModel):
    """A manual release: `phoenix` `Release Requested` with the fleet and AMI."""

    source: Literal["phoenix"]
    detail_type: Literal["Release Requested"] = Field(alias="detail-type")
    detail: ReleaseRequestedDetail


class PlanSucceededDetail(BaseModel):
    """What an earlier environment's `Plan Succeeded` says (the rest is not read)."""

    model_config = ConfigDict(extra="ignore")

    environment: str = Field(pattern=r"^[a-z][a-z0-9-]{0,23}$")
    plan: str = Field(pattern=r"^[a-z][a-z0-9-]{0,23}$")
    run: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    status: Literal["succeeded"]
    image: str = Field(min_length=1, max_length=1000)
    amis: dict[str, str] = Field(min_length=1)
    # From another account: the key that encrypts the AMIs' snapshots, per region.
    keys: dict[str, str] = {}


class PlanSucceeded(EventBridgeModel):
    """An earlier environment's plan took an image through all its waves: this
    environment's plan for the same pipeline releases its AMIs (a promotion)."""

    source: Literal["phoenix"]
    detail_type: Literal["Plan Succeeded"] = Field(alias="detail-type")
    detail: PlanSucceededDetail


STACK_STATUS_CHANGE = "CloudFormation Stack Status Change"


class StackStatusDetails(BaseModel):
    status: str = Field(min_length=1)
    status_reason: str | None = Field(default=None, alias="status-reason")


class StackStatusChangeDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    stack_id: str = Field(
        alias="stack-id", pattern=r"^arn:[^:]+:cloudformation:[^:]+:\d{12}:stack/[^/]+/"
    )
    status_details: StackStatusDetails = Field(alias="status-details")

    @property
    def stack_name(self) -> str:
        """`arn:...:stack/<name>/<id>` -> `<name>` (the pattern guarantees both parts)."""
        return self.stack_id.split("/")[1]


class StackStatusChange(EventBridgeModel):
    """`CloudFormation Stack Status Change`: a stack of this environment reached a status
    (CloudFormation user guide, "Stack Status Change event detail")."""

    source: Literal["aws.cloudformation"]
    detail_type: Literal["CloudFormation Stack Status Change"] = Field(alias="detail-type")
    detail: StackStatusChangeDetail


REFRESH_ENDED = {
    "EC2 Auto Scaling Instance Refresh Succeeded": "Successful",
    "EC2 Auto Scaling Instance Refresh Failed": "Failed",
    "EC2 Auto Scaling Instance Refresh Cancelled": "Cancelled",
    "EC2 Auto Scaling Instance Refresh Rollback Succeeded": "RollbackSuccessful",
    "EC2 Auto Scaling Instance Refresh Rollback Failed": "RollbackFailed",
}


class InstanceRefreshDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    instance_refresh_id: str = Field(alias="InstanceRefreshId", min_length=1)
    group: str = Field(alias="AutoScalingGroupName", min_length=1, max_length=255)


class InstanceRefreshEvent(EventBridgeModel):
    """`EC2 Auto Scaling Instance Refresh <Started|Succeeded|...>` from aws.autoscaling."""

    source: Literal["aws.autoscaling"]
    detail_type: str = Field(alias="detail-type", pattern=r"^EC2 Auto Scaling Instance Refresh ")
    detail: InstanceRefreshDetail


def publish(
    events: EventBridgeClient, detail_type: DetailType, state: ReleaseState, **detail: Any
) -> None:
    """One event with the release id, fleet, environment and AMIs, plus `detail`."""
    body = {
        "release_id": state.release.id,
        "environment": state.environment,
        "fleet": state.fleet,
        "strategy": state.fleet_spec.strategy,
        "to_ami": state.ami,
        "from_ami": state.plan.from_ami if state.plan else None,
        **detail,
    }
    put(events, detail_type, body)
