"""Where phoenix tells people what happened: the environment's notification topic."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import NotificationsConfig

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    """CDK's name for a retention period in days (config has already checked the value)."""
    return _RETENTION[days]


class Observability(Construct):
    """The notification topic: encrypted with `key`, TLS-only, mailing `config.emails`.

    Alarms, failed releases and rollbacks publish here. The per-environment dashboard
    joins it once fleets and releases exist to chart.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: str,
        config: NotificationsConfig,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name=f"phoenix {environment}",
            master_key=key,
            enforce_ssl=True,
        )
        for email in config.emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
