"""Event patterns for phoenix's own events (source `phoenix`, on the default bus)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_events as events


def phoenix_events(
    detail_types: Sequence[str], environments: Sequence[str], *, account: str | None = None
) -> events.EventPattern:
    """`detail_types` of phoenix events about `environments` (their detail names the
    environment), sent from `account` when given (an event another account forwards
    keeps its sender's account)."""
    return events.EventPattern(
        source=["phoenix"],
        detail_type=list(detail_types),
        account=[account] if account else None,
        detail={"environment": list(environments)},
    )
