"""The environment config: pydantic models, loading from `config/<name>.yaml`, and errors.

Every value a stack uses comes from here, validated before any construct is built, so
a bad config stops synthesis with one line naming the file, the field and the value.
Durations and sizes carry their unit in the field name (`bake_time_minutes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from phoenix.config.fleet import (
    STRATEGIES,
    BlueGreenFleet,
    CanaryFleet,
    CanarySettings,
    FleetConfig,
    RollingFleet,
)
from phoenix.config.plans import PlanConfig, Wave, check_plans, waves
from phoenix.config.promotion import PromotionConfig, Promotions, resolve
from phoenix.config.types import (
    AccountId,
    Architecture,
    Cidr,
    Name,
    Region,
    StrictModel,
    SubnetId,
    unique_names,
)

__all__ = [
    "BlueGreenFleet",
    "CanaryFleet",
    "CanarySettings",
    "ConfigError",
    "EnvironmentConfig",
    "FleetConfig",
    "RollingFleet",
    "load_environment",
]

DEFAULT_ENVIRONMENT = "sandbox"

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731),
    *(1096, 1827, 2192, 2557, 2922, 3288, 3653),
)


class ConfigError(Exception):
    """A config that cannot be used; the message is one line fit for a terminal."""


class NetworkConfig(StrictModel):
    """The VPC of one region: public subnets for load balancers, private ones for instances.

    By default phoenix creates the VPC (`cidr`, `availability_zones`, `nat_gateways`). To
    use an existing one, give `vpc_id` with one public and one private subnet id per
    availability zone; `cidr` is then the VPC's CIDR block (internal load balancers admit
    it). Either way synthesis looks nothing up: zones are the region's first
    `availability_zones` (`Fn::GetAZs`), resolved by CloudFormation at deploy time.
    """

    cidr: Cidr
    availability_zones: Annotated[int, Field(ge=2, le=6)] = 2
    nat_gateways: Annotated[int, Field(ge=1, le=6)] = 1
    vpc_id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")] | None = None
    public_subnet_ids: list[SubnetId] = []
    private_subnet_ids: list[SubnetId] = []

    @model_validator(mode="after")
    def _consistent(self) -> NetworkConfig:
        if self.nat_gateways > self.availability_zones:
            raise ValueError(
                f"nat_gateways ({self.nat_gateways}) cannot exceed "
                f"availability_zones ({self.availability_zones})"
            )
        subnets = {"public_subnet_ids": self.public_subnet_ids}
        subnets["private_subnet_ids"] = self.private_subnet_ids
        for field, ids in subnets.items():
            if self.vpc_id is None and ids:
                raise ValueError(f"{field}: only with vpc_id (an existing VPC)")
            if self.vpc_id is not None and len(ids) != self.availability_zones:
                raise ValueError(
                    f"{field}: an existing VPC needs one subnet per availability zone "
                    f"({self.availability_zones}), got {len(ids)}"
                )
        return self


class DisasterRecoveryRegion(StrictModel):
    region: Region
    network: NetworkConfig


class NotificationsConfig(StrictModel):
    emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = []


class LambdaConfig(StrictModel):
    """Settings shared by every phoenix Lambda function."""

    # Version of the AWS-managed layer AWSLambdaPowertoolsPythonV3-<runtime>-arm64.
    powertools_layer_version: Annotated[int, Field(ge=1)] = 27
    log_retention_days: int = 365

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"must be one of the CloudWatch Logs retention periods {LOG_RETENTION_DAYS}"
            )
        return value


class ImagePipelineConfig(StrictModel):
    """One EC2 Image Builder pipeline baking a golden AMI."""

    name: Name
    version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] = "1.0.0"
    architecture: Architecture = "arm64"
    parent_image_ssm_parameter: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_./-]+$")] = (
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
    )
    build_instance_types: Annotated[list[str], Field(min_length=1)] = ["t4g.medium"]
    schedule: Annotated[str, Field(pattern=r"^cron\(.+\)$")] = "cron(0 4 ? * MON *)"
    keep_images: Annotated[int, Field(ge=3, le=50)] = 5
    # The application the image serves: a package from the distribution's repositories,
    # started as `service` (the test component fails the build when it is not running).
    application_package: Annotated[str, Field(pattern=r"^[A-Za-z0-9+._-]+$")] = "nginx"
    service: Annotated[str, Field(pattern=r"^[A-Za-z0-9@._-]+$")] = "nginx"
    # Inspector findings at or above this severity fail the build.
    fail_on_severity: Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"] = "HIGH"
    launch_permission_accounts: list[AccountId] = []


class DriftCheckConfig(StrictModel):
    """The scheduled drift check (docs/hygiene.md): when it runs, as EventBridge
    Scheduler's rate or cron expression (Scheduler user guide, "Schedule types")."""

    enabled: bool = True
    schedule: Annotated[
        str,
        Field(
            pattern=r"^(rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)"
            r"|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))$"
        ),
    ] = "rate(1 hour)"


class RollbackDrillsConfig(StrictModel):
    """The rollback drills (docs/hygiene.md): the schedule that runs the drill function,
    which starts the drills that are due and moves on those under way."""

    enabled: bool = True
    # At most every 10 minutes: a drill's lock (30 minutes) must outlast its timeout
    # (15 minutes) and the run after it, or a release could take the fleet mid-drill.
    schedule: Annotated[str, Field(pattern=r"^rate\((1 minute|[2-9] minutes|10 minutes)\)$")] = (
        "rate(5 minutes)"
    )


class EnvironmentConfig(StrictModel):
    """One environment: where it deploys, its network, its image pipelines and fleets.

    `account` and `region` left out make the stacks environment-agnostic (the sandbox):
    `cdk deploy` then takes them from the credentials in use. The account is never
    looked up at synthesis; `CDK_DEFAULT_ACCOUNT` fills it in when set (see app.py).
    """

    name: Name
    description: str = ""
    account: AccountId | None = None
    region: Region | None = None
    # After a release's rollback window, an alarm rolls it back (a release of the AMI
    # before it) only if it ended at most this many hours ago; a rollback request
    # always can. Beyond it, an alarm is not evidence against the last release.
    alarm_rollback_horizon_hours: Annotated[int, Field(ge=1, le=720)] = 24
    deletion_protection: bool = True
    access_logs_retention_days: Annotated[int, Field(ge=1, le=3653)] = 90
    network: NetworkConfig
    disaster_recovery: list[DisasterRecoveryRegion] = []
    notifications: NotificationsConfig = NotificationsConfig()
    drift_check: DriftCheckConfig = DriftCheckConfig()
    rollback_drills: RollbackDrillsConfig = RollbackDrillsConfig()
    functions: LambdaConfig = LambdaConfig()
    image_pipelines: Annotated[list[ImagePipelineConfig], Field(min_length=1)]
    fleets: Annotated[list[FleetConfig], Field(min_length=1)]
    # phoenix's example pre-traffic hook, `phoenix-<name>-smoke-test` in each region, which
    # a fleet's pre_traffic_hook.function may name (docs/release.md, Pre-traffic tests)
    smoke_test_hook: bool = False
    # Release plans: a pipeline's images go through its fleets in waves (plans.py).
    plans: list[PlanConfig] = []
    # Its plans release the images an earlier environment's plans released (promotion.py).
    promotion: PromotionConfig | None = None
    # Its place in the promotion order, read from the other files by load_environment.
    _promotions: Promotions = PrivateAttr(default_factory=Promotions)

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentConfig:
        unique_names("image_pipelines", [p.name for p in self.image_pipelines])
        unique_names("fleets", [f.name for f in self.fleets])
        pipelines = {p.name: p for p in self.image_pipelines}
        for index, fleet in enumerate(self.fleets):
            pipeline = pipelines.get(fleet.image_pipeline)
            if pipeline is None:
                raise ValueError(
                    f"fleets[{index}].image_pipeline: {fleet.image_pipeline!r} is not one of "
                    f"the image_pipelines {sorted(pipelines)}"
                )
            if pipeline.architecture != fleet.architecture:
                raise ValueError(
                    f"fleets[{index}].architecture: {fleet.architecture!r} does not match "
                    f"image pipeline {pipeline.name!r} ({pipeline.architecture!r})"
                )
        if self.disaster_recovery and self.region is None:
            raise ValueError("disaster_recovery needs a primary region: set region")
        unique_names("disaster_recovery[].region", self.regions)
        check_plans(self.plans, self.fleets, list(pipelines), self.regions)
        if self.promotion is not None:
            if self.promotion.after == self.name:
                raise ValueError("promotion.after: an environment cannot follow itself")
            if not self.plans:
                raise ValueError(
                    "promotion: needs plans (promoted images go through this environment's plans)"
                )
            if self.promotion.approval and not self.notifications.emails:
                raise ValueError(
                    "promotion.approval: needs a notification target to ask for approval "
                    "(set notifications.emails)"
                )
        return self

    @property
    def promotions(self) -> Promotions:
        """Its place in the promotion order (empty unless loaded by load_environment)."""
        return self._promotions

    def promoted(self, pipeline: str) -> bool:
        """Whether the images of `pipeline` come from the earlier environment (so it is
        not baked here)."""
        return self.promotion is not None and self.plan_for(pipeline) is not None

    def plan_for(self, pipeline: str) -> PlanConfig | None:
        """The plan the images of `pipeline` go through, if it has one."""
        return next((plan for plan in self.plans if plan.image_pipeline == pipeline), None)

    def waves(self, plan: PlanConfig) -> list[Wave]:
        """The plan's waves in the order they run, each in its region."""
        return waves(plan, self.fleets, self.regions)

    @property
    def regions(self) -> list[str | None]:
        """The primary region (None when environment-agnostic), then the DR regions."""
        return [self.region] + [dr.region for dr in self.disaster_recovery]


def config_path(name: str, config_dir: Path) -> Path:
    return config_dir / f"{name}.yaml"


def available_environments(config_dir: Path) -> list[str]:
    return sorted(path.stem for path in config_dir.glob("*.yaml"))


def load_environment(name: str, config_dir: Path) -> EnvironmentConfig:
    """Read and validate `<config_dir>/<name>.yaml` and its place in the promotion order
    (the other files' `promotion.after`); raise ConfigError with a one-line reason."""
    config = _load_one(name, config_dir)
    after_of = {other: _after(other, config_dir) for other in available_environments(config_dir)}
    try:
        config._promotions = resolve(config, after_of, lambda other: _load_one(other, config_dir))
    except ValueError as err:
        raise ConfigError(f"{_shown(config_path(name, config_dir))}: {err}") from None
    return config


def _after(name: str, config_dir: Path) -> str | None:
    """The file's `promotion.after`, read without the rest of its checks (a file with
    errors of its own reports them when it is loaded itself)."""
    try:
        raw = yaml.safe_load(config_path(name, config_dir).read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    promotion = raw.get("promotion") if isinstance(raw, dict) else None
    after = promotion.get("after") if isinstance(promotion, dict) else None
    return after if isinstance(after, str) else None


def _load_one(name: str, config_dir: Path) -> EnvironmentConfig:
    path = config_path(name, config_dir)
    shown = _shown(path)
    if not path.is_file():
        raise ConfigError(
            f"{shown}: no such environment {name!r}; "
            f"known: {', '.join(available_environments(config_dir)) or 'none'}"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{shown}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{shown}: expected a mapping of settings at the top level")
    if raw.get("name", name) != name:
        raise ConfigError(f"{shown}: name: {raw['name']!r} must match the file name {name!r}")
    try:
        return EnvironmentConfig.model_validate({"name": name, **raw})
    except ValidationError as err:
        raise ConfigError(f"{shown}: {describe_errors(err)}") from None


def describe_errors(err: ValidationError) -> str:
    """Flatten pydantic's errors into `field: value: reason` clauses joined on one line."""
    clauses = []
    for error in err.errors(include_url=False):
        location = list(error["loc"])
        value = error.get("input")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "union_tag_invalid":
            location.append(error["ctx"]["discriminator"].strip("'"))
            value = error["ctx"]["tag"]
            message = f"must be one of {', '.join(STRATEGIES)}"
        elif error["type"] == "extra_forbidden":
            message = "is not a known setting"
        field = _dotted(location)
        if error["type"] == "missing":
            clauses.append(f"{field}: is required")
        elif isinstance(value, dict):
            # A check across several fields: its message names them.
            clauses.append(f"{field}: {message}" if field else message)
        else:
            clauses.append(f"{field}: {_short(value)}: {message}")
    return "; ".join(clauses)


def _dotted(location: list[int | str]) -> str:
    text = ""
    for position, part in enumerate(location):
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in STRATEGIES and position > 0 and isinstance(location[position - 1], int):
            continue  # pydantic's tag for the fleet's union member, not a key in the file
        else:
            text += f".{part}" if text else str(part)
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
