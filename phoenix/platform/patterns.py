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


def fleet_alarms_raised(environment: str) -> events.EventPattern:
    """`CloudWatch Alarm State Change` to ALARM of the environment's alarms (every fleet
    alarm is named `phoenix-<env>-...`: fleet/alarms.py)."""
    return events.EventPattern(
        source=["aws.cloudwatch"],
        detail_type=["CloudWatch Alarm State Change"],
        detail={
            "alarmName": events.Match.prefix(f"phoenix-{environment}-"),
            "state": {"value": ["ALARM"]},
        },
    )
