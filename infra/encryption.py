"""The environment's customer-managed KMS key, one per environment and region."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class EnvironmentKey(Construct):
    """A rotating KMS key that encrypts the environment's logs, topics, volumes and tables.

    The key policy lets CloudWatch Logs use it for this account's log groups only,
    CloudWatch alarms publish to topics encrypted with it, and Auto Scaling launch
    instances whose volumes it encrypts. The key is retained when the
    stack is deleted (data it encrypted may outlive the stack) and, once scheduled for
    deletion, waits `pending_window` (default 30 days) so a mistake can be undone.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: str,
        pending_window: Duration | None = None,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=f"phoenix {environment}: logs, topics, volumes and tables",
            alias=f"alias/phoenix/{environment}",
            enable_key_rotation=True,
            pending_window=pending_window or Duration.days(30),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs", resource="log-group", resource_name="*"
                        )
                    }
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToEncryptedTopics",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        # Auto Scaling's service-linked role must use the key to launch instances with
        # encrypted volumes. It is named by condition, not as the principal: the role
        # is created on first use, and KMS rejects a policy naming a role not yet there.
        auto_scaling = stack.format_arn(
            service="iam",
            region="",
            resource="role",
            resource_name="aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AutoScalingEncryptedVolumes",
                principals=[iam.AnyPrincipal()],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions={"ArnEquals": {"aws:PrincipalArn": auto_scaling}},
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AutoScalingEncryptedVolumeGrants",
                principals=[iam.AnyPrincipal()],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={
                    "ArnEquals": {"aws:PrincipalArn": auto_scaling},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            )
        )
