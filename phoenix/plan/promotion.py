"""The event routes of promotion between environments (docs/adr/0012-promotion.md).

An earlier environment sends its `Plan Succeeded` to the environments promoted directly
from it, and its `Release Rolled Back` to every later one; each later environment lets
the earlier ones' accounts put events on its default bus, and sends what arrives to its
trigger (a succeeded plan starts its own plan with the same AMIs) and to its plan control
(a rollback refuses the AMI). Environments in the same account and region share the
default bus, so nothing is forwarded between them.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from phoenix.config.environment import EnvironmentConfig
from phoenix.config.promotion import Peer
from phoenix.kernel.names import environment_key
from phoenix.platform.patterns import phoenix_events
from phoenix.platform.undelivered import bus_target, lambda_target


class Promotion(Construct):
    """A region's part in the promotion order (see the module's docstring)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        primary: bool,
        trigger: lambda_.Function,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, id)
        promotions = config.promotions
        if promotions.to_another_account:
            # A later environment in another account grants its Auto Scaling role the use
            # of this key (the AMIs' snapshots); a succeeded plan names it from here.
            ssm.StringParameter(
                self,
                "KeyArn",
                parameter_name=environment_key(config.name),
                string_value=key.key_arn,
                description=f"phoenix {config.name}: the key of this region's AMIs",
            )
        if promotions.later:
            ForwardToLater(self, "ForwardToLater", config=config, primary=primary)
        if primary and config.promotion is not None:
            ReceiveFromEarlier(self, "ReceiveFromEarlier", config=config, trigger=trigger)


def add_promotion(
    scope: Construct,
    config: EnvironmentConfig,
    *,
    primary: bool,
    trigger: lambda_.Function,
    key: kms.IKey,
) -> Promotion | None:
    """The stack's part in the promotion order, when the environment has one."""
    promotions = config.promotions
    if not (promotions.later or config.promotion is not None):
        return None
    return Promotion(
        scope,
        "Promotion",
        config=config,
        primary=primary,
        trigger=trigger,
        key=key,
    )


class ForwardToLater(Construct):
    """This region's `phoenix` events a later environment needs, sent to its bus.

    A target bus in another account or region is reached with a role that EventBridge
    creates for the rule (CDK's EventBus target), allowed PutEvents on that bus only;
    the receiving bus's policy admits this account (EventBridge user guide, "Sending
    and receiving events between AWS accounts"). One rule per later environment: a rule
    takes at most five targets."""

    def __init__(
        self, scope: Construct, id: str, *, config: EnvironmentConfig, primary: bool
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        direct = {peer.name for peer in config.promotions.promotes_to}
        self.rules: dict[str, events.Rule] = {}
        for peer in config.promotions.later:
            if _same_bus(stack, peer):
                continue
            detail_types = ["Release Rolled Back"]
            if primary and peer.name in direct:
                detail_types.insert(0, "Plan Succeeded")
            bus = events.EventBus.from_event_bus_arn(
                self, f"Bus-{peer.name}", _bus_arn(stack, peer)
            )
            self.rules[peer.name] = events.Rule(
                self,
                f"To-{peer.name}",
                description=f"phoenix {config.name}: what {peer.name} needs to know of it",
                event_pattern=phoenix_events(detail_types, [config.name], account=stack.account),
                targets=[bus_target(self, bus)],
            )


class ReceiveFromEarlier(Construct):
    """In the primary region of a promoted environment: the earlier environments'
    accounts may put events on this default bus, and a succeeded plan of the source
    environment goes to the trigger."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        trigger: lambda_.Function,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        promotions = config.promotions
        accounts = sorted(
            {peer.account for peer in promotions.earlier if peer.account} - {config.account or ""}
        )
        # The L1 resource: EventBusPolicy (L2) cannot render a PolicyStatement from Python
        # (CircularReferenceDetected in jsii).
        bus = stack.format_arn(service="events", resource="event-bus", resource_name="default")
        for account in accounts:
            statement_id = f"phoenix-{config.name}-from-{account}"
            events.CfnEventBusPolicy(
                self,
                f"From-{account}",
                event_bus_name="default",
                statement_id=statement_id,
                statement={
                    "Sid": statement_id,
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{stack.partition}:iam::{account}:root"},
                    "Action": "events:PutEvents",
                    "Resource": bus,
                },
            )
        source = promotions.source
        if source is None:
            return
        self.rule = events.Rule(
            self,
            "Promotions",
            description=f"phoenix {config.name}: images {source.name}'s plans released",
            event_pattern=phoenix_events(
                ["Plan Succeeded"], [source.name], account=source.account or stack.account
            ),
            targets=[lambda_target(trigger)],
        )


def _same_bus(stack: Stack, peer: Peer) -> bool:
    """Whether `peer`'s controller listens on this stack's default bus (same account and
    region; an environment-agnostic peer deploys where this one does)."""
    return (peer.account or stack.account) == stack.account and (
        peer.region or stack.region
    ) == stack.region


def _bus_arn(stack: Stack, peer: Peer) -> str:
    return stack.format_arn(
        service="events",
        account=peer.account or stack.account,
        region=peer.region or stack.region,
        resource="event-bus",
        resource_name="default",
    )
