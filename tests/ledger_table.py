"""The ledger's table as phoenix/release/ledger.py declares it, for moto tests."""

from __future__ import annotations

from typing import Any


def create_ledger_table(dynamodb: Any, name: str) -> None:
    """Create `name` with the ledger's key schema (`pk`, `sk`), on demand."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
