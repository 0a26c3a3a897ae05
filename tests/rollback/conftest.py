"""The rollback tests' real (moto) ledger table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.ledger_table import create_ledger_table
from tests.release.release_state import CREDENTIALS, TABLE


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", **CREDENTIALS)
        create_ledger_table(client, TABLE)
        yield client
