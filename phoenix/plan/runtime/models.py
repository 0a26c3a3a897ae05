"""What a plan execution carries from state to state, and what each step receives.

The state machine's input is the trigger's `PlanRequest`; the definition adds the plan's
layout (`layout`, its waves and blocked windows, written into the definition at
synthesis) and the run (`run`: the execution's name and start). Each step receives
`{"action", "state": $, "entered_at"[, "task_token"]}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,23}$")]
KEY_ARN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/(mrk-)?[0-9a-f-]{32,36}$"


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class WaveLayout(Model):
    name: str
    region: str | None = None  # None: environment-agnostic, the function's own region
    fleets: list[Name]
    max_concurrency: Annotated[int, Field(ge=1)]
    bake_minutes: Annotated[int, Field(ge=0)]
    min_requests: Annotated[int, Field(ge=0)]


class Layout(Model):
    waves: Annotated[list[WaveLayout], Field(min_length=1)]
    blocked: list[dict[str, Any]] = []


class Run(Model):
    id: Annotated[str, Field(min_length=1, max_length=80)]
    started_at: datetime


class PlanRequest(Model):
    """The input of a plan execution: one image through the plan (from the trigger)."""

    environment: Name
    plan: Name
    image: str
    # The image's AMI in each region it was distributed to.
    amis: dict[str, Annotated[str, Field(pattern=r"^ami-[0-9a-f]{8,17}$")]]
    event_id: Annotated[str, Field(min_length=1, max_length=64)]
    trigger: str = "image-available"
    # The earlier environment whose plan released the image (a promotion), if any, and
    # in each region the ARN of its key that encrypts the AMI's snapshots.
    promoted_from: Name | None = None
    keys: dict[str, Annotated[str, Field(pattern=KEY_ARN)]] = {}


class Item(Model):
    """One fleet's release in one region, as the wave's map runs it."""

    fleet: Name
    region: str
    ami: str
    name: str  # the release execution's name
    local: bool  # in the plan's own region (started by the state machine itself)


class Wave(Model):
    name: str
    region: str
    items: list[Item]
    max_concurrency: int
    bake_seconds: int
    min_requests: int


class Waves(Model):
    count: int
    all: list[Wave]


class Position(Model):
    wave: Annotated[int, Field(ge=0)]


class Current(Model):
    wave: Wave


class Moment(Model):
    at: datetime


class PlanState(PlanRequest):
    run: Run
    layout: Layout
    waves: Waves | None = None
    position: Position | None = None
    current: Current | None = None
    # When the wave's last release ended (the bake counts requests from then).
    ended: Moment | None = None
    # How the wave's releases ended (WaveOutcome), and what stopped the plan.
    outcome: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None


class PlanStep(Model):
    action: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
    state: PlanState
    entered_at: datetime
    task_token: Annotated[str, Field(min_length=1, max_length=2048)] | None = None


class RunRef(Model):
    """Which run and wave an item belongs to."""

    plan: Name
    id: Annotated[str, Field(min_length=1, max_length=80)]
    wave: Annotated[int, Field(ge=0)]


class ItemStep(Model):
    """A step of one fleet's release in the wave's map (one item)."""

    action: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")]
    item: Item
    run: RunRef
    request: dict[str, Any]
