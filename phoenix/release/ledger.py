"""The release ledger's table (docs/architecture.md, The ledger).

Its items: phoenix/kernel/ledger.py.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# Release items by fleet, newest first: `phoenix history` reads a fleet's last N releases,
# or those of a time range, with one Query (phoenix/kernel/history.py). Sparse: only
# release items carry both `fleet` and `started_at`.
from phoenix.kernel.history import HISTORY_INDEX

# What DynamoDB asks of a caller on a table encrypted with a customer managed key.
TABLE_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")


class ReleaseLedger(Construct):
    """One DynamoDB table (`pk`, `sk`): on demand, point-in-time recovery on, encrypted
    with `key`, retained when the stack goes (release history is kept for years), with an
    index of each fleet's releases by start time (HISTORY_INDEX)."""

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
        self.table.add_global_secondary_index(
            index_name=HISTORY_INDEX,
            partition_key=dynamodb.Attribute(name="fleet", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="started_at", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

    def grant(self, grantee: iam.IGrantable, *actions: str) -> None:
        """Allow `actions` on the table (not its index: the functions read items by key;
        Table.grant would add `<table>/index/*`), and what its key asks of every caller."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=list(actions), resource_arns=[self.table.table_arn]
        )
        self._key.grant(grantee, *TABLE_KEY_ACTIONS)
