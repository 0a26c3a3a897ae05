"""The release's state as it travels through the state machine, as pydantic models.

The state machine passes every Lambda step `{"state": <the execution's state>,
"entered_at": <when the step began>, "task_token": <for waits>}`; each step's handler
validates it with `StepInput` and refuses (MalformedStepError) anything else before it
makes any AWS call.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from phoenix.kernel.models import AmiId, FleetName, FrozenModel, Percent, SlotSpec, Strategy
from phoenix.kernel.names import Slot


class MalformedStepError(Exception):
    """A step's input is not what the state machine sends; nothing was changed."""


Score = Annotated[float, Field(ge=0, le=100)]


class JudgedMetricSpec(FrozenModel):
    """One built-in metric's rule (phoenix/config/fleet.py JudgedMetric)."""

    allowed_ratio: Annotated[float, Field(ge=1)] = 1.2
    critical: bool = False
    weight: Score = 50


class CustomMetricSpec(FrozenModel):
    """A fleet's own CloudWatch metric, judged per minute (phoenix/config/fleet.py
    CustomMetric); `dimensions` may name the slot's resources as placeholders."""

    name: str
    namespace: str
    metric: str
    statistic: str
    dimensions: dict[str, str]
    direction: Literal["increase", "decrease"] = "increase"
    allowed_ratio: Annotated[float, Field(ge=1)] = 1.2
    critical: bool = False
    weight: Score = 20


class JudgmentSpec(FrozenModel):
    """How a canary step is judged (phoenix/config/fleet.py JudgmentSettings)."""

    confidence: Annotated[float, Field(gt=0, lt=1)] = 0.98
    pass_score: Score = 95
    marginal_score: Score = 75
    min_requests: Annotated[int, Field(ge=1)] = 200
    min_periods: Annotated[int, Field(ge=1)] = 4
    extensions: Annotated[int, Field(ge=0)] = 1
    when_marginal: Literal["fail", "hold"] = "fail"
    approval_timeout_minutes: Annotated[int, Field(ge=1)] = 60
    errors: JudgedMetricSpec = JudgedMetricSpec(critical=True)
    latency: JudgedMetricSpec = JudgedMetricSpec()
    metrics: tuple[CustomMetricSpec, ...] = ()


class PreTrafficHookSpec(FrozenModel):
    """A function run against the new slot's instances before traffic moves to them
    (phoenix/config/fleet.py PreTrafficHook)."""

    function: Annotated[str, Field(min_length=1)]
    timeout_seconds: Annotated[int, Field(ge=1, le=840)]
    input: dict[str, str] = Field(default_factory=dict)


class FleetSpec(FrozenModel):
    """What the state machine knows of a fleet (read from the fleet registry)."""

    name: FleetName
    strategy: Strategy
    # The image pipeline whose images the fleet releases (trigger: subscriptions).
    image_pipeline: Annotated[str, Field(min_length=1)]
    # The stack that deploys the fleet: a deploy of it releases what it changed.
    stack: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$")]
    architecture: Literal["arm64", "x86_64"]
    listener: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:elasticloadbalancing:")]
    slots: dict[Slot, SlotSpec]
    alarms: list[str]
    min_healthy_percentage: Percent
    max_healthy_percentage: Annotated[int, Field(ge=100, le=200)]
    checkpoint_percentages: list[Annotated[int, Field(ge=1, le=100)]]
    checkpoint_delay_seconds: Annotated[int, Field(ge=0)]
    bake_seconds: Annotated[int, Field(ge=0)]
    steps: Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(min_length=1)]
    rollback_window_seconds: Annotated[int, Field(ge=0)]
    warmup_seconds: Annotated[int, Field(ge=1)]
    warmup_checks: Annotated[int, Field(ge=1)]
    when_locked: Literal["reject", "queue"] = "reject"
    queue_retry_seconds: Annotated[int, Field(ge=60)] = 300
    drift: Literal["report", "remediate"] = "report"  # for the drift check, not the release
    drift_resources: tuple[str, ...] = ()  # the drift check's, as well
    cve_severity: str = "HIGH"  # for the vulnerability function, not the release
    rebuild_on_cve: bool = False
    drill_every_seconds: Annotated[int, Field(ge=0)] = 0  # for the rollback drills
    queue_attempts: Annotated[int, Field(ge=0)] = 0
    judgment: JudgmentSpec = JudgmentSpec()
    # AwaitApproval's TimeoutSecondsPath: a held step with no decision this long rolls back
    approval_seconds: Annotated[int, Field(ge=60)] = 3600
    pre_traffic_hook: PreTrafficHookSpec | None = None

    @property
    def checkpoint_pauses(self) -> list[int]:
        """The checkpoints a rolling refresh pauses at: all but the last, 100, at which
        the refresh ends."""
        return [p for p in self.checkpoint_percentages if p < 100]


class ReleaseRef(FrozenModel):
    id: Annotated[str, Field(min_length=1, max_length=80)]
    started_at: datetime


class TrafficStep(FrozenModel):
    target: Percent
    active: Percent
    last: bool
    # The same weights in the listener's order, the fleet's slots as its template writes
    # them (Plan.first_target_group, second_target_group): a listener the controller set
    # stays as its template orders it, so drift detection finds no drift in it. (Defaults:
    # a plan made before these fields, in a release under way when phoenix is updated,
    # whose state machine definition shifts by `target` and `active`.)
    first: Percent = 0
    second: Percent = 0


class CurrentStep(FrozenModel):
    """The traffic step in progress and when it began (set by the state machine)."""

    weights: TrafficStep
    at: datetime


class Capacity(FrozenModel):
    min: Annotated[int, Field(ge=0)]
    max: Annotated[int, Field(ge=0)]
    desired: Annotated[int, Field(ge=0)]


class Plan(FrozenModel):
    """What preflight found: where the fleet is and what this release will change."""

    from_ami: AmiId
    active_slot: Slot
    target_slot: Slot
    active_target_group: str
    target_target_group: str
    # The slots' target groups in the order the fleet's template forwards to them
    # (blue_green and canary; a rolling fleet's one slot shifts no traffic).
    first_target_group: str = ""
    second_target_group: str = ""
    # The target slot's version now: a rolling release's way back.
    source_version: Annotated[int, Field(ge=1)]
    # The target slot's launch template version the last deploy that changed it made
    # (preflight.deployed_version): the new version's base.
    template_version: Annotated[int, Field(ge=1)]
    capacity: Capacity
    # Instances the target slot still runs (blue_green/canary: the previous release's old
    # slot inside its rollback window); the new release replaces them.
    target_running: Annotated[int, Field(ge=0)] = 0
    steps: list[TrafficStep]
    refresh_wait_seconds: Annotated[int, Field(ge=60)]


class Prepared(FrozenModel):
    version: Annotated[int, Field(ge=1)]


class Warmup(FrozenModel):
    ready: bool
    checks_left: Annotated[int, Field(ge=0)]
    reason: str = ""


class RefreshOutcome(FrozenModel):
    status: str
    reason: str = ""
    polls_left: Annotated[int, Field(ge=0)] = 0


class RolledBack(FrozenModel):
    wait: bool
    action: str
    reason: str
    # The refresh a rolling rollback waits for (RollbackInstanceRefresh keeps the release's
    # refresh id; a refresh back has its own): its polls check the group's latest is it.
    refresh_id: str | None = None


class RollbackRefresh(FrozenModel):
    """The rollback's instance refresh as a poll read it (`$.rollback_refresh`): whether
    the fleet is back on the version before the release, and when not, what the ledger
    says (`summary`)."""

    status: str
    reason: str = ""
    polls_left: Annotated[int, Field(ge=0)] = 0
    back: bool = False
    summary: str = ""


class Failure(BaseModel):
    """What a Catch puts at `$.error`: the error name and its cause."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str = Field(default="", alias="Cause")

    @property
    def message(self) -> str:
        """The cause, or the message of the Lambda error the cause carries as JSON."""
        try:
            carried = json.loads(self.cause)
        except ValueError:
            return self.cause or self.error
        if isinstance(carried, dict) and carried.get("errorMessage"):
            return f"{carried.get('errorType', self.error)}: {carried['errorMessage']}"
        return self.cause or self.error


# The trigger of a release a finished deploy asks for: `deploy of <stack name>`.
DEPLOY_TRIGGER = "deploy of "


class ReleaseState(BaseModel):
    """The execution's state; later steps add to it, so unknown keys are kept."""

    model_config = ConfigDict(frozen=True, extra="allow")

    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
    fleet: FleetName
    ami: AmiId
    trigger: Annotated[str, Field(min_length=1, max_length=300)]
    event_id: Annotated[str, Field(min_length=1, max_length=100)]
    image: str | None = None
    release: ReleaseRef
    fleet_spec: FleetSpec
    plan: Plan | None = None
    prepared: Prepared | None = None
    step: CurrentStep | None = None
    warmup: Warmup | None = None
    refresh: RefreshOutcome | None = None
    error: Failure | None = None
    rollback: RolledBack | None = None
    rollback_refresh: RollbackRefresh | None = None

    @property
    def is_rollback(self) -> bool:
        """A release the rollback function started: of the last good AMI, on a fleet
        whose alarms may be in ALARM because of the release it undoes."""
        return self.trigger.startswith("rollback")

    @property
    def is_deploy(self) -> bool:
        """A release of the pointer AMI a deploy asked for: it goes ahead only when the
        deploy changed the launch template the fleet runs (preflight.check_deploy_changed)."""
        return self.trigger.startswith(DEPLOY_TRIGGER)

    def reason(self) -> str:
        """Why the release did not succeed, as the rollback or the Catch recorded it."""
        if self.rollback is not None:
            return self.rollback.reason
        if self.error is not None:
            return self.error.message
        return ""

    def need_plan(self) -> Plan:
        if self.plan is None:
            raise MalformedStepError("the state has no plan (preflight has not run)")
        return self.plan

    def need_version(self) -> int:
        if self.prepared is None:
            raise MalformedStepError("the state has no prepared launch template version")
        return self.prepared.version


class StepInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")] = "run"
    state: ReleaseState
    entered_at: datetime
    task_token: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
