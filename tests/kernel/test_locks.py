"""The fleet's lock against a rollback drill, on a real (moto) ledger table: a release that
meets a drill's lock is told so (DrillLockError: it waits, whatever its when_locked), and a
holder that lets go between the refused write and the read is followed by one more try."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from phoenix.kernel import clock
from phoenix.kernel.ledger import Ledger, iso
from phoenix.kernel.locks import DrillLockError, LockRefusedError
from tests.ledger_table import create_ledger_table
from tests.release.release_state import CREDENTIALS, TABLE

HOLD = timedelta(hours=6)


@pytest.fixture
def book() -> Iterator[Ledger]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", **CREDENTIALS)
        create_ledger_table(client, TABLE)
        yield Ledger(client, TABLE)


def _held_by(book: Ledger, owner: str) -> None:
    assert book.update_fleet_if(
        "web",
        UpdateExpression="SET lock_owner = :owner, lock_expires = :expires",
        ConditionExpression="attribute_not_exists(lock_owner)",
        ExpressionAttributeValues={
            ":owner": {"S": owner},
            ":expires": {"S": iso(clock.now() + timedelta(minutes=30))},
        },
    )


def test_a_drill_s_lock_is_told_apart_from_a_release_s(book: Ledger) -> None:
    _held_by(book, "drill-20261202T120000Z")
    with pytest.raises(DrillLockError, match="held by rollback drill drill-20261202T120000Z"):
        book.acquire("web", "web-1", hold=HOLD)
    assert book.release_lock("web", "drill-20261202T120000Z")
    _held_by(book, "web-0")
    with pytest.raises(LockRefusedError, match="locked by release web-0") as refused:
        book.acquire("web", "web-1", hold=HOLD)
    assert not isinstance(refused.value, DrillLockError)


def test_a_holder_that_lets_go_before_the_read_is_followed_by_one_more_try(book: Ledger) -> None:
    # Given a drill that frees the fleet just after the release's write was refused
    _held_by(book, "drill-1")
    real = book.update_fleet_if
    calls: list[Any] = []

    def refused_once(fleet: str, **update: Any) -> bool:
        if not update["UpdateExpression"].startswith("SET lock_owner = :release"):
            return real(fleet, **update)  # (the drill's own unlock)
        calls.append(update["UpdateExpression"])
        if len(calls) == 1:
            assert real(fleet, **update) is False
            assert book.release_lock("web", "drill-1")
            return False
        return real(fleet, **update)

    book.update_fleet_if = refused_once  # type: ignore[method-assign]
    # When the release takes the lock, it tries once more and holds it
    book.acquire("web", "web-1", hold=HOLD)
    assert len(calls) == 2
    assert book.fleet_item("web")["lock_owner"] == "web-1"
