"""PhoenixStage: the stacks of one environment, one stack per region it runs in."""

from __future__ import annotations

from aws_cdk import Environment, Fn, Stack, Stage, Tags
from constructs import Construct

from infra.config import EnvironmentConfig, NetworkConfig
from infra.encryption import EnvironmentKey
from infra.network import Network
from infra.observability import Observability


class PhoenixStack(Stack):
    """Everything phoenix runs in one region of one environment, composed and wired.

    One stack per region keeps each region deployable on its own (a disaster recovery
    region must not depend on the primary's stack) and avoids cross-stack exports,
    which would pin resources a release needs to replace.
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
    ) -> None:
        self._zone_count = network.availability_zones
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
        )

    @property
    def availability_zones(self) -> list[str]:
        # The region's first N zones, resolved by CloudFormation at deploy time. CDK's
        # default for a stack bound to an account and region is a context lookup that
        # needs credentials and the network at synthesis; for an agnostic one, two zones.
        return [Fn.select(index, Fn.get_azs()) for index in range(self._zone_count)]


class PhoenixStage(Stage):
    """One environment: a stack in its primary region and one per disaster recovery region.

    Stacks are named `phoenix-<env>` (primary) and `phoenix-<env>-<region>` (DR). With no
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
        regions = [(config.region, config.network, True)] + [
            (dr.region, dr.network, False) for dr in config.disaster_recovery
        ]
        for region, network, primary in regions:
            name = f"phoenix-{config.name}" if primary else f"phoenix-{config.name}-{region}"
            env = Environment(account=account, region=region) if region else None
            self.stacks.append(
                PhoenixStack(self, name, config=config, network=network, env=env, primary=primary)
            )
        Tags.of(self).add("phoenix:environment", config.name)
        Tags.of(self).add("phoenix:managed-by", "cdk")
