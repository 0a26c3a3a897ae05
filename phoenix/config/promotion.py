"""Promotion between environments (docs/adr/0012-promotion.md).

An environment with `promotion: {after: staging}` bakes none of the images its plans
release: each plan takes the images that the same pipeline's plan in `staging` took
through all of its waves (`Plan Succeeded`), after a bake of `bake_minutes` and, when
`approval` is set, a person's approval. The order is declared once per environment, by
the later one; the earlier one learns whom it promotes to by reading the other files of
the config folder, so that both sides of a promotion come from one source of truth.

The checks here need more than one file (`resolve`); a file's own checks are in
`EnvironmentConfig`. Each raises ValueError naming this file's `promotion` field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from phoenix.config.types import Name, StrictModel

if TYPE_CHECKING:
    from phoenix.config.environment import EnvironmentConfig


class PromotionConfig(StrictModel):
    """Where this environment's images come from, and what they wait for here."""

    after: Name
    # How long after the earlier environment's plan succeeded this one's first wave may
    # start (its fleets serve the image meanwhile: that is the bake).
    bake_minutes: Annotated[int, Field(ge=0, le=10080)] = 60
    # A person approves (or rejects) each promoted image before its first wave; the
    # request goes to the environment's notification target.
    approval: bool = False


@dataclass(frozen=True)
class Peer:
    """Another environment in a promotion order: where its controller runs."""

    name: str
    account: str | None
    region: str | None


@dataclass(frozen=True)
class Promotions:
    """This environment's place in the promotion order."""

    # The environment whose images this one releases (promotion.after).
    source: Peer | None = None
    # Every environment before this one, nearest first: an AMI rolled back in any of
    # them is refused here.
    earlier: tuple[Peer, ...] = ()
    # The environments promoted directly from this one (they hear `Plan Succeeded`).
    promotes_to: tuple[Peer, ...] = ()
    # Every environment after this one (they hear `Release Rolled Back`).
    later: tuple[Peer, ...] = ()
    # This environment's account (None: the deploy's credentials').
    account: str | None = None

    @property
    def from_another_account(self) -> bool:
        """Its images come from an environment in another account."""
        return self.source is not None and self.source.account != self.account

    @property
    def to_another_account(self) -> bool:
        """It promotes to an environment in another account."""
        return any(peer.account != self.account for peer in self.promotes_to)


def resolve(
    config: EnvironmentConfig,
    after_of: dict[str, str | None],
    load: Callable[[str], EnvironmentConfig],
) -> Promotions:
    """This environment's place in the order. `after_of` maps every environment of the
    config folder to its `promotion.after` (None without one); `load` reads one."""
    name = config.name
    chain = [name]
    while (following := after_of.get(chain[-1])) is not None:
        if following in chain:
            order = " -> ".join([*chain[chain.index(following) :], following])
            raise ValueError(f"promotion.after: the promotion order has a cycle ({order})")
        if following not in after_of:
            raise ValueError(
                f"promotion.after: {following!r} is not an environment of the config folder "
                f"(known: {', '.join(sorted(after_of))})"
            )
        chain.append(following)
    later = [other for other in sorted(after_of) if name in _before(other, after_of)]
    loaded = {other: load(other) for other in [*chain[1:], *later]}  # each file once
    if config.promotion is not None:
        _check_source(config, loaded[config.promotion.after])
    earlier = [_peer(loaded[other]) for other in chain[1:]]
    return Promotions(
        source=earlier[0] if earlier else None,
        earlier=tuple(earlier),
        promotes_to=tuple(_peer(loaded[o]) for o in later if after_of.get(o) == name),
        later=tuple(_peer(loaded[other]) for other in later),
        account=config.account,
    )


def _before(name: str, after_of: dict[str, str | None]) -> list[str]:
    """The environments before `name` in the order, nearest first (a cycle ends it)."""
    before: list[str] = []
    while (following := after_of.get(before[-1] if before else name)) is not None:
        if following == name or following in before:
            break
        before.append(following)
    return before


def _peer(config: EnvironmentConfig) -> Peer:
    return Peer(config.name, config.account, config.region)


def _check_source(config: EnvironmentConfig, source: EnvironmentConfig) -> None:
    """The earlier environment can hand over every image this one's plans release:
    a plan per pipeline, the AMIs in every region here, launchable by this account."""
    field = "promotion.after"
    if (config.account is None) != (source.account is None):
        raise ValueError(
            f"{field}: {source.name!r} and this environment must both name their account "
            "or both leave it to the deploy's credentials (the same account)"
        )
    cross_account = config.account != source.account
    source_regions = set(source.regions)
    for index, plan in enumerate(config.plans):
        if source.plan_for(plan.image_pipeline) is None:
            raise ValueError(
                f"{field}: {source.name!r} has no plan for image pipeline "
                f"{plan.image_pipeline!r} (plans[{index}])"
            )
        pipeline = next(p for p in source.image_pipelines if p.name == plan.image_pipeline)
        if cross_account and config.account not in pipeline.launch_permission_accounts:
            raise ValueError(
                f"{field}: {source.name!r}'s image pipeline {pipeline.name!r} does not share "
                f"its AMIs with this environment's account {config.account} "
                "(add it to its launch_permission_accounts)"
            )
    missing = [
        region or "(the deploy's)" for region in config.regions if region not in source_regions
    ]
    if missing:
        raise ValueError(
            f"{field}: {source.name!r}'s images reach no region {', '.join(missing)} "
            "(each region releases its own copy of the AMI)"
        )
