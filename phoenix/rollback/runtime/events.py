"""The events the rollback function receives, as Powertools parser models."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field


class AlarmState(BaseModel):
    value: str
    reason: str = ""
    timestamp: str | None = None


class AlarmStateChangeDetail(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    alarm_name: str = Field(alias="alarmName", min_length=1, max_length=255)
    state: AlarmState


class AlarmStateChange(EventBridgeModel):
    """`CloudWatch Alarm State Change` from aws.cloudwatch."""

    source: Literal["aws.cloudwatch"]
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    detail: AlarmStateChangeDetail


class FleetRequestDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fleet: str = Field(pattern=r"^[a-z][a-z0-9-]{0,23}$")
    requested_by: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=500)


class FleetRequest(EventBridgeModel):
    """`phoenix` `Rollback Requested`, `Releases Paused` or `Releases Resumed`."""

    source: Literal["phoenix"]
    detail_type: Literal["Rollback Requested", "Releases Paused", "Releases Resumed"] = Field(
        alias="detail-type"
    )
    detail: FleetRequestDetail
