"""Release plan models of the environment config: waves, bakes and blocked windows.

A plan takes every image of one pipeline through the environment's fleets in waves
(docs/adr/0011-release-plans.md). Each wave names fleets of one region; every fleet that
follows the pipeline is in exactly one wave of each region the environment deploys. When
no wave names a disaster recovery region, that region's waves are the primary's, run
after them ("DR last"). The checks across the environment (fleets, regions) are the
environment's (`check_plans`), so that their messages name the plan's fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from phoenix.config.types import Name, Region, StrictModel, unique_names
from phoenix.plan.runtime.windows import NoAllowedStartError, next_start, parse_hours

if TYPE_CHECKING:
    from phoenix.config.fleet import FleetConfig

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class BlockedWindow(StrictModel):
    """When no wave may start. Each given part narrows the window: `days` and `dates`
    choose days, `hours` the time of day on them (all day when left out), all read in
    `timezone` (an IANA name, such as Europe/Berlin)."""

    days: list[Day] = []
    dates: list[date] = []
    hours: str | None = None
    timezone: str = "UTC"

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hours(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone such as Europe/Berlin") from None
        return value

    @model_validator(mode="after")
    def _something(self) -> BlockedWindow:
        if self.days and self.dates:
            raise ValueError("give days or dates, not both (a window is one or the other)")
        if not (self.days or self.dates or self.hours):
            raise ValueError("a blocked window needs days, dates or hours")
        return self


class WaveConfig(StrictModel):
    """Fleets released together: at most `max_concurrency` at once; then the wave bakes
    `bake_minutes`, and the bake counts only once its fleets served `min_requests`."""

    name: Name
    fleets: Annotated[list[Name], Field(min_length=1)]
    region: Region | None = None  # default: the environment's primary region
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 1
    bake_minutes: Annotated[int, Field(ge=0, le=10080)] = 0
    min_requests: Annotated[int, Field(ge=0)] = 0


class PlanConfig(StrictModel):
    """The order one pipeline's images take through the environment's fleets."""

    name: Name
    image_pipeline: Name
    waves: Annotated[list[WaveConfig], Field(min_length=1)]
    blocked: list[BlockedWindow] = []


@dataclass(frozen=True)
class Wave:
    """A wave as a plan runs it: its fleets in one region (None: environment-agnostic)."""

    name: str
    region: str | None
    fleets: tuple[str, ...]
    max_concurrency: int
    bake_minutes: int
    min_requests: int


def check_plans(
    plans: list[PlanConfig],
    fleets: list[FleetConfig],
    pipelines: list[str],
    regions: list[str | None],
) -> None:
    """The checks that need the environment: raise ValueError naming the field."""
    unique_names("plans", [plan.name for plan in plans])
    for index, plan in enumerate(plans):
        field = f"plans[{index}]"
        if plan.image_pipeline not in pipelines:
            raise ValueError(
                f"{field}.image_pipeline: {plan.image_pipeline!r} is not one of the "
                f"image_pipelines {sorted(pipelines)}"
            )
        unique_names(f"{field}.waves", [wave.name for wave in plan.waves])
        others = [p.name for p in plans[:index] if p.image_pipeline == plan.image_pipeline]
        if others:
            raise ValueError(
                f"{field}.image_pipeline: {plan.image_pipeline!r} already has plan {others[0]!r}"
            )
        waves(plan, fleets, regions, field=field)
        _leaves_time(plan.blocked, field)


def _leaves_time(blocked: list[BlockedWindow], field: str) -> None:
    """Windows of days and hours repeat every week: they must leave a minute of it free
    (windows of dates end, so they never block for good)."""
    weekly = [w.model_dump(mode="json") for w in blocked if not w.dates]
    try:
        next_start(weekly, datetime(2026, 1, 5, tzinfo=UTC))  # any moment does
    except NoAllowedStartError:
        raise ValueError(
            f"{field}.blocked: the windows leave no minute of the week to start a wave in"
        ) from None


def waves(
    plan: PlanConfig,
    fleets: list[FleetConfig],
    regions: list[str | None],
    *,
    field: str = "plan",
) -> list[Wave]:
    """The plan's waves in the order they run, each in its region (DR last by default);
    ValueError when a fleet is in none, in two, or not one of the pipeline's."""
    following = [f.name for f in fleets if f.image_pipeline == plan.image_pipeline]
    primary = regions[0]
    named = {wave.region for wave in plan.waves if wave.region not in (None, primary)}
    resolved: list[Wave] = []
    for index, wave in enumerate(plan.waves):
        region = primary if wave.region is None else wave.region
        if region not in regions:
            raise ValueError(
                f"{field}.waves[{index}].region: {wave.region!r} is not a region of this "
                f"environment {[r for r in regions if r]}"
            )
        for fleet in wave.fleets:
            if fleet not in following:
                raise ValueError(
                    f"{field}.waves[{index}].fleets: {fleet!r} is not a fleet of image "
                    f"pipeline {plan.image_pipeline!r} {sorted(following)}"
                )
        resolved.append(_wave(wave, region, wave.name))
    # DR last: a region no wave names repeats the primary's waves after them.
    primary_waves = [wave for wave in resolved if wave.region == primary]
    for region in regions[1:]:
        if region not in named:
            resolved += [_wave(w, region, f"{w.name}-{region}") for w in primary_waves]
    for region in regions:
        placed: dict[str, str] = {}
        for runs in (w for w in resolved if w.region == region):
            for fleet in runs.fleets:
                if fleet in placed:
                    raise ValueError(
                        f"{field}.waves: fleet {fleet!r} is in two waves, {placed[fleet]!r} "
                        f"and {runs.name!r}{_in(region)}"
                    )
                placed[fleet] = runs.name
        missing = [fleet for fleet in following if fleet not in placed]
        if missing:
            raise ValueError(
                f"{field}.waves: fleets {missing} of image pipeline {plan.image_pipeline!r} "
                f"are in no wave{_in(region)}"
            )
    return resolved


def _wave(wave: WaveConfig | Wave, region: str | None, name: str) -> Wave:
    return Wave(
        name=name,
        region=region,
        fleets=tuple(wave.fleets),
        max_concurrency=wave.max_concurrency,
        bake_minutes=wave.bake_minutes,
        min_requests=wave.min_requests,
    )


def _in(region: str | None) -> str:
    return f" in {region}" if region else ""
