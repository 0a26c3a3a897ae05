"""Fleet models of the environment config: capacity, health, alarms and release strategy."""

from __future__ import annotations

import itertools
import json
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from phoenix.config.types import Architecture, Name, Percent, StrictModel
from phoenix.kernel.ledger import LOCK_HOLD
from phoenix.kernel.names import Slot


class CapacityConfig(StrictModel):
    min: Annotated[int, Field(ge=0)] = 2
    max: Annotated[int, Field(ge=1)] = 4

    @model_validator(mode="after")
    def _min_not_above_max(self) -> CapacityConfig:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class HealthCheckConfig(StrictModel):
    path: Annotated[str, Field(pattern=r"^/\S*$")] = "/health"
    interval_seconds: Annotated[int, Field(ge=5, le=300)] = 15
    healthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2
    unhealthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2
    grace_period_seconds: Annotated[int, Field(ge=0, le=7200)] = 120
    deregistration_delay_seconds: Annotated[int, Field(ge=0, le=3600)] = 30


class AlarmThresholds(StrictModel):
    """What "unhealthy" means for a fleet; every release gate and rollback reads these."""

    error_rate_percent: Annotated[float, Field(gt=0, le=100)] = 5.0
    p99_latency_ms: Annotated[int, Field(ge=1)] = 1000
    unhealthy_hosts: Annotated[int, Field(ge=1)] = 1
    evaluation_periods: Annotated[int, Field(ge=1, le=10)] = 2


class RollingSettings(StrictModel):
    """Instance Refresh settings; launch before terminate by default (100 / 200 percent)."""

    min_healthy_percentage: Annotated[int, Field(ge=0, le=100)] = 100
    max_healthy_percentage: Annotated[int, Field(ge=100, le=200)] = 200
    checkpoint_percentages: list[Percent] = [50, 100]
    checkpoint_delay_minutes: Annotated[int, Field(ge=0, le=120)] = 5
    bake_time_minutes: Annotated[int, Field(ge=0, le=120)] = 5

    @field_validator("checkpoint_percentages")
    @classmethod
    def _ascending_to_100(cls, steps: list[int]) -> list[int]:
        return _ascending_steps_ending_at_100(steps)

    @model_validator(mode="after")
    def _room_to_replace(self) -> RollingSettings:
        if self.max_healthy_percentage - self.min_healthy_percentage < 10:
            raise ValueError(
                "max_healthy_percentage must exceed min_healthy_percentage by at least 10"
            )
        return self


class BlueGreenSettings(StrictModel):
    bake_time_minutes: Annotated[int, Field(ge=0, le=120)] = 10
    rollback_window_minutes: Annotated[int, Field(ge=0, le=1440)] = 30


Weight = Annotated[float, Field(ge=0, le=100)]
# A fleet's custom metrics: each is one more pair of queries in the gate's GetMetricData
# and about 250 bytes of the fleet's registry parameter, which holds 8 KB at most; the rest
# of a fleet's spec takes under 4 KB (docs/judgment.md, tests/release/test_registry.py).
MAX_CUSTOM_METRICS = 5
CUSTOM_METRICS_BYTES = 3500
# How many times the baseline the canary may be, in the bad direction, before it counts.
AllowedRatio = Annotated[float, Field(ge=1, le=100)]


class JudgedMetric(StrictModel):
    """How one of the built-in metrics (5xx rate, p99 latency) is judged."""

    allowed_ratio: AllowedRatio = 1.2
    critical: bool = False
    weight: Weight = 50


# CloudWatch's statistics a custom metric may be judged on (CloudWatch User Guide,
# "CloudWatch statistics definitions"): the five basic ones and percentiles pNN.NN.
STATISTIC = re.compile(r"^(SampleCount|Average|Sum|Minimum|Maximum|p(100|\d{1,2}(\.\d{1,2})?))$")
# What a custom metric's dimension value may be instead of a literal: the judged slot's
# resource (the canary's for the canary, the active slot's for the baseline).
SLOT_PLACEHOLDERS = ("{target_group}", "{load_balancer}", "{auto_scaling_group}")
BUILT_IN_METRICS = ("5xx rate", "p99 latency")


class CustomMetric(StrictModel):
    """A CloudWatch metric of the fleet's own, judged per minute like the p99 latency:
    each side's values read with the slot's resources filled into its dimensions."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$")]
    namespace: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^:]+$")]
    metric: Annotated[str, Field(min_length=1, max_length=255)]
    statistic: str
    dimensions: Annotated[dict[str, str], Field(min_length=1, max_length=30)]
    direction: Literal["increase", "decrease"] = "increase"
    allowed_ratio: AllowedRatio = 1.2
    critical: bool = False
    weight: Weight = 20

    @field_validator("statistic")
    @classmethod
    def _known_statistic(cls, statistic: str) -> str:
        if not STATISTIC.match(statistic):
            raise ValueError(
                f"unknown statistic {statistic!r}: one of SampleCount, Average, Sum, Minimum, "
                "Maximum or a percentile such as p99 or p99.9"
            )
        return statistic

    @field_validator("dimensions")
    @classmethod
    def _a_slot_to_fill(cls, dimensions: dict[str, str]) -> dict[str, str]:
        for name, value in dimensions.items():
            if ("{" in value or "}" in value) and value not in SLOT_PLACEHOLDERS:
                raise ValueError(
                    f"dimension {name} is {value!r}: a placeholder is one of "
                    f"{', '.join(SLOT_PLACEHOLDERS)}, alone"
                )
        if not any(value in SLOT_PLACEHOLDERS for value in dimensions.values()):
            raise ValueError(
                f"no dimension to fill: {', '.join(f'{k}={v}' for k, v in dimensions.items())} "
                f"names no slot ({', '.join(SLOT_PLACEHOLDERS)}), so the canary and the "
                "baseline would read the same series"
            )
        return dimensions


# How long a release may hold its fleet's lock (a canary's bakes, extensions and
# approvals must fit; the state machine's timeout is longer still).
RELEASE_MINUTES = int(LOCK_HOLD.total_seconds() // 60)


class JudgmentSettings(StrictModel):
    """How a canary step is judged against the baseline (docs/judgment.md)."""

    confidence: Annotated[float, Field(ge=0.8, le=0.999)] = 0.98
    pass_score: Weight = 95
    marginal_score: Weight = 75
    # fewer canary requests than this in a step: the 5xx rate has no data
    min_requests: Annotated[int, Field(ge=1)] = 200
    # fewer periods (minutes) than this on a side: a per-period metric has no data
    min_periods: Annotated[int, Field(ge=3, le=120)] = 4
    # a marginal score bakes the step again (judged on all its minutes), at most this
    # many times; still marginal then, the step fails or (hold) waits for a person's
    # `Canary Step Approved` or `Canary Step Rejected`, rolled back without one in time
    extensions: Annotated[int, Field(ge=0, le=5)] = 1
    when_marginal: Literal["fail", "hold"] = "fail"
    approval_timeout_minutes: Annotated[int, Field(ge=5, le=240)] = 60
    errors: JudgedMetric = JudgedMetric(critical=True)
    latency: JudgedMetric = JudgedMetric()
    # the fleet's own CloudWatch metrics, judged beside the built-in ones
    metrics: Annotated[list[CustomMetric], Field(max_length=MAX_CUSTOM_METRICS)] = []

    @model_validator(mode="after")
    def _scores_in_order(self) -> JudgmentSettings:
        if self.marginal_score > self.pass_score:
            raise ValueError(
                f"marginal_score ({self.marginal_score:g}) is above pass_score "
                f"({self.pass_score:g})"
            )
        if self.errors.weight + self.latency.weight + sum(m.weight for m in self.metrics) == 0:
            raise ValueError("every metric's weight is 0: nothing to score")
        size = len(json.dumps([m.model_dump() for m in self.metrics], separators=(",", ":")))
        if size > CUSTOM_METRICS_BYTES:
            raise ValueError(
                f"metrics take {size} bytes as JSON, more than the {CUSTOM_METRICS_BYTES} the "
                "fleet's registry parameter leaves them"
            )
        names = [m.name for m in self.metrics]
        for name in names:
            if name in BUILT_IN_METRICS:
                raise ValueError(f"metrics: the name {name!r} is the built-in metric's")
            if names.count(name) > 1:
                raise ValueError(f"metrics: the name {name!r} is used twice")
        return self

    @property
    def per_minute(self) -> bool:
        """Whether some metric that counts is judged per minute (all but the 5xx rate)."""
        return self.latency.weight > 0 or any(m.weight > 0 for m in self.metrics)


class CanarySettings(StrictModel):
    steps: list[Percent] = [5, 25, 50, 100]
    step_bake_time_minutes: Annotated[int, Field(ge=1, le=120)] = 5
    rollback_window_minutes: Annotated[int, Field(ge=0, le=1440)] = 30
    judgment: JudgmentSettings = JudgmentSettings()

    @field_validator("steps")
    @classmethod
    def _ascending_to_100(cls, steps: list[int]) -> list[int]:
        return _ascending_steps_ending_at_100(steps)

    @model_validator(mode="after")
    def _periods_to_judge(self) -> CanarySettings:
        # A bake of N minutes holds N - 1 whole one-minute periods at least (CloudWatch
        # reads the window to the second; its first minute may begin before it). Only a
        # latency or custom metric that counts (weight above 0) is judged per minute.
        if self.judgment.per_minute and self.step_bake_time_minutes - 1 < self.judgment.min_periods:
            raise ValueError(
                f"step_bake_time_minutes ({self.step_bake_time_minutes}) holds fewer whole "
                f"one-minute periods than judgment.min_periods ({self.judgment.min_periods}): "
                "it needs one minute more"
            )
        judgment = self.judgment
        per_step = self.step_bake_time_minutes * (1 + judgment.extensions)
        if judgment.when_marginal == "hold":
            per_step += judgment.approval_timeout_minutes
        longest = len(self.steps) * per_step
        if longest > RELEASE_MINUTES:
            raise ValueError(
                f"{len(self.steps)} steps of up to {per_step} minutes each (bake, extensions"
                f"{', approval' if judgment.when_marginal == 'hold' else ''}) take up to "
                f"{longest} minutes, more than the {RELEASE_MINUTES} a release may hold its fleet"
            )
        return self


def _ascending_steps_ending_at_100(steps: list[int]) -> list[int]:
    if not steps or steps[-1] != 100:
        raise ValueError("must end at 100")
    if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
        raise ValueError("must be strictly increasing")
    return steps


_AMI_OR_PARAMETER = r"^(ami-[0-9a-f]{8,17}|/[A-Za-z0-9_./-]+)$"


class FleetBase(StrictModel):
    name: Name
    image_pipeline: Name
    instance_type: Annotated[str, Field(pattern=r"^[a-z0-9-]+\.[a-z0-9]+$")] = "t4g.small"
    architecture: Architecture = "arm64"
    # The AMI the release pointer starts at: an AMI id, or a public SSM parameter naming
    # one (read once, when the pointer is created). Default: latest Amazon Linux 2023.
    bootstrap_ami: (
        Annotated[str, Field(pattern=r"^(ami-[0-9a-f]{8,17}|/[A-Za-z0-9_./-]+)$")] | None
    ) = None
    instance_port: Annotated[int, Field(ge=1, le=65535)] = 80
    # Target tracking: requests per instance per minute the active slot scales to hold.
    target_requests_per_minute: Annotated[int, Field(ge=1)] = 1000
    root_volume_gib: Annotated[int, Field(ge=8, le=16384)] = 16
    capacity: CapacityConfig = CapacityConfig()
    health_check: HealthCheckConfig = HealthCheckConfig()
    alarms: AlarmThresholds = AlarmThresholds()
    max_instance_lifetime_days: Annotated[int, Field(ge=1, le=365)] = 14
    internet_facing: bool = True
    # A release for a fleet another release holds: rejected, or queued (it retries the
    # lock every `queue_retry_minutes`, for at most the lock's hold of 6 hours).
    when_locked: Literal["reject", "queue"] = "reject"
    queue_retry_minutes: Annotated[int, Field(ge=1, le=60)] = 5
    # What the scheduled drift check does when it finds the fleet drifted (docs/hygiene.md):
    # tell (`report`), or also release the pointer AMI through the normal path (`remediate`).
    drift: Literal["report", "remediate"] = "report"
    # A rollback drill proves the way back still works, this many days after the last
    # one (docs/hygiene.md); 0: never. The environment's `rollback_drills` runs them.
    rollback_drill_days: Annotated[int, Field(ge=0, le=90)] = 7
    # An Inspector finding at or above this severity on a serving instance raises
    # `Fleet Vulnerable` (docs/hygiene.md).
    cve_severity: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"] = "HIGH"
    # ... and starts the fleet's image pipeline, so a patched AMI goes through the
    # fleet's normal release (docs/hygiene.md).
    rebuild_on_cve: bool = False
    certificate_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:acm:")] | None = None

    @property
    def initial_ami(self) -> str:
        if self.bootstrap_ami:
            return self.bootstrap_ami
        kernel = "arm64" if self.architecture == "arm64" else "x86_64"
        return f"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{kernel}"

    @property
    def slots(self) -> tuple[Slot, ...]:
        """The fleet's Auto Scaling slots: blue and green (one serves, one waits)."""
        return ("blue", "green")


# A Lambda function of the fleet's account and region: its name, or its ARN (unqualified).
FUNCTION = r"^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}$"


HookKey = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")]
HookValue = Annotated[str, Field(max_length=128)]


class PreTrafficHook(StrictModel):
    """A Lambda function run against the new slot's instances before any traffic moves to
    them (docs/release.md, Pre-traffic tests): it answers `{"passed": true|false,
    "reason": ...}`; a failure, an error or no answer within `timeout_seconds` rolls the
    release back with no user traffic served."""

    function: Annotated[str, Field(pattern=FUNCTION)]
    # Lambda runs a function for 900 s at most; the step waiting for it needs a minute more
    timeout_seconds: Annotated[int, Field(ge=1, le=840)] = 300
    # passed to the function as `input` (phoenix's example hook reads `path`); small, as
    # it travels in the fleet's registry parameter
    input: Annotated[dict[HookKey, HookValue], Field(max_length=4)] = {}


class RollingFleet(FleetBase):
    strategy: Literal["rolling"]
    rolling: RollingSettings = RollingSettings()

    @property
    def slots(self) -> tuple[Slot, ...]:
        """A rolling fleet refreshes its instances in place: one slot, blue."""
        return ("blue",)


class BlueGreenFleet(FleetBase):
    strategy: Literal["blue_green"]
    blue_green: BlueGreenSettings = BlueGreenSettings()
    pre_traffic_hook: PreTrafficHook | None = None


class CanaryFleet(FleetBase):
    strategy: Literal["canary"]
    canary: CanarySettings = CanarySettings()
    pre_traffic_hook: PreTrafficHook | None = None


FleetConfig = Annotated[
    RollingFleet | BlueGreenFleet | CanaryFleet, Field(discriminator="strategy")
]
STRATEGIES = ("rolling", "blue_green", "canary")
