"""PhoenixStage: the stacks of one environment, one stack per region it runs in."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Environment, Fn, RemovalPolicy, Stack, Stage, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig, NetworkConfig
from phoenix.config.fleet import FleetConfig
from phoenix.drift.drift_check import DriftCheck
from phoenix.drills.rollback_drills import RollbackDrills
from phoenix.fleet.controller_state import ControllerState, provider_permissions
from phoenix.fleet.immutable_fleet import ImmutableFleet
from phoenix.hooks.smoke_test import SmokeTestHook
from phoenix.images.forward import forward_images
from phoenix.images.pipeline import GoldenImagePipeline
from phoenix.kernel.names import FLEET_STACKS
from phoenix.plan.orchestrator import PlanOrchestrator
from phoenix.plan.promotion import add_promotion
from phoenix.platform.dashboard import EnvironmentDashboard, FleetsDashboard
from phoenix.platform.encryption import EnvironmentKey
from phoenix.platform.nag import acknowledge_wildcard, nag_arn, skip_checkov
from phoenix.platform.network import Network
from phoenix.platform.notifications import Notifications
from phoenix.platform.observability import Observability, log_retention
from phoenix.platform.record import record_environment
from phoenix.release.orchestrator import ReleaseOrchestrator
from phoenix.release.spec import register_fleet
from phoenix.vulnerabilities.findings import VulnerabilityFindings

# How many fleets the main stack holds (its controller, network and pipelines are about
# 130 resources, a fleet about 25), and each fleet stack: both stay under 400 resources
# (tests/test_scale.py, bench/scale.py).
MAIN_STACK_FLEETS = 8
FLEETS_PER_STACK = 12


class PhoenixStack(Stack):
    """Everything phoenix runs in one region of one environment, composed and wired.

    One stack per region keeps each region deployable on its own (a disaster recovery
    region must not depend on the primary's stack) and avoids cross-stack exports,
    which would pin resources a release needs to replace.

    Every region runs its own release controller for its own fleets. Images are baked
    only in the primary region and distributed to the others, and Image Builder
    announces them only there: the primary forwards each AVAILABLE event of this
    environment's images to every DR region's default event bus (`forward_images`),
    where that region's controller reads the image in the primary and releases its
    own region's copy of the AMI.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        network: NetworkConfig,
        env: Environment | None,
        primary: bool,
        fleets: Sequence[FleetConfig] | None = None,
    ) -> None:
        self._zone_count = network.availability_zones
        fleets = config.fleets if fleets is None else fleets
        super().__init__(
            scope,
            id,
            env=env,
            stack_name=id,
            description=f"phoenix {config.name}: immutable EC2 fleets and their releases"
            + ("" if primary else " (disaster recovery region)"),
            termination_protection=config.deletion_protection,
        )
        self.encryption = EnvironmentKey(self, "Encryption", environment=config.name)
        # The pipelines' AMIs reach every region encrypted with its key, and the accounts
        # given launch permission must be able to use it there.
        self.encryption.share_with(
            [a for pipeline in config.image_pipelines for a in pipeline.launch_permission_accounts]
        )
        self.network = Network(
            self,
            "Network",
            config=network,
            key=self.encryption.key,
            log_retention_days=config.functions.log_retention_days,
        )
        self.observability = Observability(
            self,
            "Observability",
            environment=config.name,
            config=config.notifications,
            key=self.encryption.key,
            access_logs_retention_days=config.access_logs_retention_days,
        )
        self.fleets = add_fleets(self, config, network, fleets, shared=self)
        if primary:
            # Images are baked in the primary region (and copied to the others), but for
            # a promoted environment's plans: their images come from the earlier one.
            self.image_pipelines = {
                pipeline.name: GoldenImagePipeline(
                    self,
                    f"Images-{pipeline.name}",
                    environment=config.name,
                    config=pipeline,
                    vpc=self.network.vpc,
                    key=self.encryption.key,
                    topic=self.observability.topic,
                    regions=[r for r in config.regions if r is not None] or [self.region],
                    access_logs=self.observability.access_logs,
                )
                for pipeline in config.image_pipelines
                if not config.promoted(pipeline.name)
            }
            self.forward_images = {
                dr.region: forward_images(self, config, dr.region)
                for dr in config.disaster_recovery
            }
        if config.smoke_test_hook:  # phoenix's example pre-traffic hook, where asked for
            SmokeTestHook(self, "SmokeTestHook", config=config, key=self.encryption.key)
        self.release = ReleaseOrchestrator(
            self,
            "Release",
            config=config,
            key=self.encryption.key,
            image_region=None if primary else config.region,
        )
        EnvironmentDashboard(
            self, "Dashboard", environment=config.name, fleets=self.fleets.values()
        )
        # What people are told, as text, on the environment's topic.
        Notifications(
            self, "Notifications", environment=config.name, topic=self.observability.topic
        )
        # What drifted from the controller's state, on the environment's schedule.
        DriftCheck(
            self, "Drift", config=config, key=self.encryption.key, ledger=self.release.ledger
        )
        # Drills of each fleet's way back, on the environment's schedule.
        RollbackDrills(
            self, "Drills", config=config, key=self.encryption.key,
            ledger=self.release.ledger, topic=self.observability.topic,
        )  # fmt: skip
        # Inspector's findings on serving instances.
        VulnerabilityFindings(
            self, "Vulnerabilities", config=config, key=self.encryption.key,
            ledger=self.release.ledger,
        )  # fmt: skip
        # Where the `phoenix` CLI finds this region's controller (phoenix/cli/).
        record_environment(
            self,
            config.name,
            table=self.release.ledger.table,
            state_machine=self.release.state_machine,
            topic=self.observability.topic,
            primary=primary,
        )
        if primary and config.plans:
            # Plans run in the primary region; a wave elsewhere releases there.
            self.plans = PlanOrchestrator(
                self,
                "Plans",
                config=config,
                key=self.encryption.key,
                ledger=self.release.ledger,
                topic=self.observability.topic,
            )
        # Promotion between environments: what earlier and later environments exchange.
        self.promotion = add_promotion(
            self,
            config,
            primary=primary,
            trigger=self.release.trigger,
            key=self.encryption.key,
        )

    @property
    def availability_zones(self) -> list[str]:
        # The region's first N zones, resolved by CloudFormation at deploy time (CDK's
        # default: a context lookup, which needs credentials and the network at synthesis).
        return [Fn.select(index, Fn.get_azs()) for index in range(self._zone_count)]


class ControllerStateStack(Stack):
    """The release controller's state in one region, deployed before the PhoenixStack.

    Holds only create-only parameters (see ControllerState); the PhoenixStack reads
    them through dynamic references, which CloudFormation resolves before it deploys.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        env: Environment | None,
        fleets: Sequence[FleetConfig] | None = None,
    ) -> None:
        fleets = config.fleets if fleets is None else fleets
        super().__init__(
            scope,
            id,
            env=env,
            stack_name=id,
            description=f"phoenix {config.name}: release controller state (create-only)",
            termination_protection=config.deletion_protection,
        )
        # One role and log group for the stack's custom-resource provider: it may call
        # only the SSM actions its resources grant it, and write only its own logs.
        provider_logs = logs.LogGroup(
            self,
            "ProviderLogs",
            retention=log_retention(config.functions.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        provider_role = iam.Role(
            self,
            "ProviderRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"phoenix {config.name}: creates the release controller's parameters",
        )
        provider_logs.grant_write(provider_role)
        skip_checkov(
            provider_logs,
            "CKV_AWS_158",
            "Not encrypted with the environment's key: this stack deploys before the region "
            "stack that holds the key, and has none of its own. The group holds only the "
            "provider's logs of its SSM calls (parameter names and initial values, no "
            "secret), which CloudWatch Logs encrypts at rest with its own keys.",
        )
        permissions = provider_permissions(self, config.name, list(fleets), provider_role)
        acknowledge_wildcard(
            permissions,
            nag_arn(self, "ssm", f"parameter/phoenix/{config.name}/*"),
            "The environment's controller parameters, created once by this stack's "
            "custom resources: one statement whatever the number of fleets.",
        )
        self.fleets = {
            fleet.name: ControllerState(
                self,
                f"Fleet-{fleet.name}",
                environment=config.name,
                fleet=fleet,
                provider_role=provider_role,
                provider_logs=provider_logs,
                permissions=permissions,
            )
            for fleet in fleets
        }


class PhoenixStage(Stage):
    """One environment: a stack in its primary region and one per disaster recovery region.

    Stacks are named `phoenix-<env>` (primary) and `phoenix-<env>-<region>` (DR), each
    with a `...-state` stack for the release controller's parameters. The first
    MAIN_STACK_FLEETS fleets are in that stack; the others in fleet stacks of at most
    FLEETS_PER_STACK, `<name>-fleets-<n>`, each with its own `-state` stack (so that no
    stack nears CloudFormation's 500 resources: docs/adr/0010-fleet-stacks.md). With no
    region in the config the primary stack is environment-agnostic. `account` falls back
    to `default_account` (CDK_DEFAULT_ACCOUNT); it is never looked up at synthesis.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        default_account: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        account = config.account or default_account
        self.config = config
        self.stacks: list[PhoenixStack] = []
        self.state_stacks: list[ControllerStateStack] = []
        self.fleet_stacks: list[FleetStack] = []
        regions = [(config.region, config.network, True)] + [
            (dr.region, dr.network, False) for dr in config.disaster_recovery
        ]
        first, rest = fleet_groups(config.fleets)
        for region, network, primary in regions:
            name = f"phoenix-{config.name}" if primary else f"phoenix-{config.name}-{region}"
            env = Environment(account=account, region=region) if region else None
            main = PhoenixStack(
                self,
                name,
                config=config,
                network=network,
                env=env,
                primary=primary,
                fleets=first,
            )
            self.stacks.append(main)
            self._after_its_state(main, config, env, first)
            for number, group in enumerate(rest, start=1):
                fleet_stack = FleetStack(
                    self,
                    f"{name}{FLEET_STACKS}{number}",
                    config=config,
                    network=network,
                    env=env,
                    fleets=group,
                    main=main,
                )
                self.fleet_stacks.append(fleet_stack)
                self._after_its_state(fleet_stack, config, env, group)
        Tags.of(self).add("phoenix:environment", config.name)
        Tags.of(self).add("phoenix:managed-by", "cdk")

    def _after_its_state(
        self,
        stack: Stack,
        config: EnvironmentConfig,
        env: Environment | None,
        fleets: Sequence[FleetConfig],
    ) -> None:
        """`stack`'s `-state` stack, for `fleets`, deployed before it."""
        state = ControllerStateStack(
            self, f"{stack.stack_name}-state", config=config, env=env, fleets=fleets
        )
        stack.add_stack_dependency(state, "dynamic references read the controller's parameters")
        self.state_stacks.append(state)


def fleet_groups(
    fleets: Sequence[FleetConfig],
) -> tuple[list[FleetConfig], list[list[FleetConfig]]]:
    """The main stack's fleets, and the groups of the rest, one fleet stack each."""
    first, rest = list(fleets[:MAIN_STACK_FLEETS]), list(fleets[MAIN_STACK_FLEETS:])
    groups = [rest[n : n + FLEETS_PER_STACK] for n in range(0, len(rest), FLEETS_PER_STACK)]
    return first, groups


class FleetStack(Stack):
    """Fleets beyond the main stack's share, in the main stack's network, with its key,
    access log bucket and alarm topic (read from the main stack's outputs when the fleet
    stack is deployed, `Fn::GetStackOutput`: docs/adr/0010-fleet-stacks.md)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        network: NetworkConfig,
        env: Environment | None,
        fleets: Sequence[FleetConfig],
        main: PhoenixStack,
    ) -> None:
        super().__init__(
            scope,
            id,
            env=env,
            stack_name=id,
            description=f"phoenix {config.name}: fleets {', '.join(f.name for f in fleets)}"[:1024],
            termination_protection=config.deletion_protection,
        )
        self.fleets = add_fleets(self, config, network, fleets, shared=main)
        FleetsDashboard(self, "Dashboard", name=id, fleets=self.fleets.values())


def add_fleets(
    scope: Stack,
    config: EnvironmentConfig,
    network: NetworkConfig,
    fleets: Sequence[FleetConfig],
    *,
    shared: PhoenixStack,
) -> dict[str, ImmutableFleet]:
    """`fleets` in `scope`, in the network of `shared` (the region's stack) with its key,
    access log bucket and alarm topic, each registered in the fleet registry."""
    made = {
        fleet.name: ImmutableFleet(
            scope,
            f"Fleet-{fleet.name}",
            environment=config.name,
            config=fleet,
            vpc=shared.network.vpc,
            vpc_cidr=network.cidr,
            key=shared.encryption.key,
            access_logs=shared.observability.access_logs,
            alarm_topic=shared.observability.topic,
            deletion_protection=config.deletion_protection,
        )
        for fleet in fleets
    }
    for fleet in made.values():
        register_fleet(fleet)
    return made
