"""The release ledger's table (docs/architecture.md, The ledger).

Its items: phoenix/kernel/ledger.py.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# What DynamoDB asks of a caller on a table encrypted with a customer managed key.
TABLE_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")


class ReleaseLedger(Construct):
    """One DynamoDB table (`pk`, `sk`): on demand, point-in-time recovery on, encrypted
    with `key`, retained when the stack goes (release history is kept for years)."""

    def __init__(self, scope: Construct, id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self._key = key
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def grant(self, grantee: iam.IGrantable, *actions: str) -> None:
        """Allow `actions` on the table, and what its key asks of every caller."""
        self.table.grant(grantee, *actions)
        self._key.grant(grantee, *TABLE_KEY_ACTIONS)
