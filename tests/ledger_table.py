"""The ledger's table as phoenix/release/ledger.py declares it, for moto tests."""

from __future__ import annotations

from typing import Any

from phoenix.kernel.history import HISTORY_INDEX


def create_ledger_table(dynamodb: Any, name: str) -> None:
    """Create `name` with the ledger's key schema (`pk`, `sk`) and its history index
    (`fleet`, `started_at`; tests/release/test_release_infra.py holds the template to
    the same), on demand."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": attribute, "AttributeType": "S"}
            for attribute in ("pk", "sk", "fleet", "started_at")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": HISTORY_INDEX,
                "KeySchema": [
                    {"AttributeName": "fleet", "KeyType": "HASH"},
                    {"AttributeName": "started_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
