"""Conditional writes in the embedded AWS are atomic (local/dynamodb_writes.py): of many
concurrent writers whose condition holds only for the first, exactly one succeeds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb import models

from local import install_extensions
from tests.release.release_state import CREDENTIALS

WRITERS = 16


@pytest.fixture
def table() -> Iterator[str]:
    with mock_aws():
        install_extensions(None)
        boto3.client("dynamodb", region_name="us-east-1", **CREDENTIALS).create_table(
            TableName="ledger",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield "ledger"


@pytest.mark.parametrize("attempt", range(3))
def test_of_concurrent_claims_exactly_one_succeeds(
    table: str, attempt: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each condition takes a moment to evaluate, as it may on a busy machine: without
    # atomic writes, every writer would find the item unclaimed
    parse = models.create_condition_expression_parser

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.01)
        return parse(*args, **kwargs)

    monkeypatch.setattr(models, "create_condition_expression_parser", slow)
    start = threading.Barrier(WRITERS)
    won: list[int] = []
    lost: list[str] = []

    def claim(writer: int) -> None:
        client = boto3.client("dynamodb", region_name="us-east-1", **CREDENTIALS)
        start.wait()
        try:
            client.update_item(
                TableName=table,
                Key={"pk": {"S": f"FLEET#{attempt}"}},
                UpdateExpression="SET owner_ = :me",
                ConditionExpression="attribute_not_exists(owner_)",
                ExpressionAttributeValues={":me": {"N": str(writer)}},
            )
            won.append(writer)
        except ClientError as error:
            lost.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(won) == 1, won
    assert lost == ["ConditionalCheckFailedException"] * (WRITERS - 1)
