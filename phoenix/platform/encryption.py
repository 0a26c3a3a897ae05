"""The environment's customer-managed KMS key, one per environment and region."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from phoenix.platform.nag import skip_checkov

# What a principal needs to launch instances whose volumes the key encrypts (the EC2
# Auto Scaling user guide's key policy for encrypted volumes).
VOLUME_KEY_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
]


def autoscaling_role(account: str | None, partition: str = "aws") -> str:
    """The ARN of Auto Scaling's default service-linked role in `account`."""
    return (
        f"arn:{partition}:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/"
        "AWSServiceRoleForAutoScaling"
    )


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
                    # No kms:Describe*: DescribeKey takes no encryption context, so under
                    # this condition it could never be allowed (Service Authorization
                    # Reference, AWS KMS); CloudWatch Logs does not need it.
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
        # EventBridge publishes the notification rules' messages to the encrypted topic
        # (EventBridge User Guide, "Amazon SNS permissions": the key policy must let
        # events.amazonaws.com use the key).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgePublishesToEncryptedTopics",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        # Auto Scaling launches fleet instances and Image Builder build instances and AMI
        # copies with volumes this key encrypts; their service-linked roles must use it.
        # They are named by condition, not as principals: a service-linked role is created
        # on first use, and KMS rejects a policy naming a role that is not there yet.
        for sid, service, role in (
            ("AutoScaling", "autoscaling.amazonaws.com", "AWSServiceRoleForAutoScaling"),
            ("ImageBuilder", "imagebuilder.amazonaws.com", "AWSServiceRoleForImageBuilder"),
        ):
            self._allow_service_linked_role(sid, f"aws-service-role/{service}/{role}")
        skip_checkov(
            self.key,
            "CKV_AWS_33",
            "The only '*' principals are narrowed by an aws:PrincipalArn condition to this "
            "account's Auto Scaling and Image Builder service-linked roles, which cannot be "
            "named as principals: they are created on first use, and KMS refuses a key "
            "policy naming a role that does not exist yet.",
        )

    def share_with(self, accounts: list[str]) -> None:
        """Let `accounts` launch instances from the AMIs this key encrypts (the image
        pipeline gives them launch permission). An AMI with encrypted snapshots is only
        launchable where its key may be used. The key policy lets the accounts use the key,
        and lets each create a grant for its own Auto Scaling service-linked role and no
        other grantee: a service-linked role's permissions cannot name a key of another
        account, so Auto Scaling there uses the key through that grant, which the account
        creates itself (Amazon EC2 Auto Scaling User Guide, "Required AWS KMS key policy
        for use with encrypted volumes", cross-account example). A `GrantIsForAWSResource`
        condition would refuse that grant: the account, not an AWS service, creates it."""
        if not accounts:
            return
        shared = sorted(set(accounts))
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="SharedAmisUseTheKey",
                principals=[iam.AccountPrincipal(account) for account in shared],
                actions=VOLUME_KEY_ACTIONS,
                resources=["*"],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="SharedAmisGrantToAutoScaling",
                principals=[iam.AccountPrincipal(account) for account in shared],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={
                    "StringEquals": {"kms:GranteePrincipal": [autoscaling_role(a) for a in shared]}
                },
            )
        )

    def _allow_service_linked_role(self, sid: str, role_path: str) -> None:
        role = Stack.of(self).format_arn(
            service="iam", region="", resource="role", resource_name=role_path
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{sid}EncryptedVolumes",
                principals=[iam.AnyPrincipal()],
                actions=VOLUME_KEY_ACTIONS,
                resources=["*"],
                conditions={"ArnEquals": {"aws:PrincipalArn": role}},
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{sid}EncryptedVolumeGrants",
                principals=[iam.AnyPrincipal()],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={
                    "ArnEquals": {"aws:PrincipalArn": role},
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            )
        )
