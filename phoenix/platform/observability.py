"""Where phoenix tells people what happened, and keeps what its load balancers saw."""

from __future__ import annotations

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnCondition,
    CfnMapping,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from phoenix.config.environment import NotificationsConfig
from phoenix.platform.nag import skip_checkov
from phoenix.platform.undelivered import ID as UNDELIVERED
from phoenix.platform.undelivered import Undelivered

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
    """The notification topic, the load balancers' access-log bucket, and the queue of
    undelivered events (platform/undelivered.py).

    The topic is encrypted with `key`, TLS-only and mails `config.emails`; alarms,
    failed releases and rollbacks publish to it. The access-log bucket is private,
    TLS-only and encrypted with S3-managed keys (the only encryption ALB access logging
    supports); logs expire after `access_logs_retention_days`. The per-environment
    dashboard joins them once releases exist to chart.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: str,
        config: NotificationsConfig,
        key: kms.IKey,
        access_logs_retention_days: int,
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
        # What could not be delivered, found by the stack's rules (Undelivered.of).
        self.undelivered = Undelivered(
            Stack.of(self), UNDELIVERED, environment=environment, key=key, topic=self.topic
        )
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(access_logs_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._allow_load_balancer_logs()
        itself = (
            "This bucket holds access logs; logging its own access would log into itself "
            "or need another log bucket with the same question."
        )
        Validations.of(self.access_logs).acknowledge(
            Acknowledgment(id="AwsSolutions::AwsSolutions-S1", reason=itself)
        )
        skip_checkov(self.access_logs, "CKV_AWS_18", itself)
        skip_checkov(
            self.access_logs,
            "CKV_AWS_21",
            "Not versioned: the load balancers and S3 write each log file once, under a "
            "name of its own, and nothing rewrites them; they expire after "
            "access_logs_retention_days, and versions would only keep deleted logs past "
            "the retention the config sets.",
        )

    def _allow_load_balancer_logs(self) -> None:
        """Let Elastic Load Balancing write access logs here, in whatever region we deploy.

        Regions older than August 2022 deliver through a regional ELB account; newer ones
        through the `logdelivery.elasticloadbalancing.amazonaws.com` service. CDK's own
        `log_access_logs` must know the region at synthesis, which an environment-agnostic
        stack does not, so the choice is made by CloudFormation from a region map. (In a
        newer region the account statement names this account, which grants nothing
        that its own IAM policies do not.)
        """
        regions = CfnMapping(
            self,
            "LoadBalancerLogAccounts",
            mapping={
                info.name: {"account": info.elbv2_account or "none"} for info in RegionInfo.regions
            },
        )
        log_account = regions.find_in_map(Aws.REGION, "account")
        legacy_region = CfnCondition(
            self,
            "DeliversThroughElbAccount",
            expression=Fn.condition_not(Fn.condition_equals(log_account, "none")),
        )
        writer_account = Fn.condition_if(
            legacy_region.logical_id, log_account, Aws.ACCOUNT_ID
        ).to_string()
        objects = self.access_logs.arn_for_objects(f"*/AWSLogs/{Aws.ACCOUNT_ID}/*")
        self.access_logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="LoadBalancerLogDelivery",
                principals=[iam.ServicePrincipal("logdelivery.elasticloadbalancing.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[objects],
            )
        )
        self.access_logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="LoadBalancerLogDeliveryOlderRegions",
                principals=[iam.AccountPrincipal(writer_account)],
                actions=["s3:PutObject"],
                resources=[objects],
            )
        )
