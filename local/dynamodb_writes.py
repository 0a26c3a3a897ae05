"""DynamoDB's writes in the embedded AWS are atomic, as DynamoDB's are.

A conditional write checks its condition and writes as one operation: of two concurrent
writers whose condition holds only for the first to write, one succeeds and the other
gets ConditionalCheckFailedException (Amazon DynamoDB Developer Guide, "Condition
expressions": conditional writes; "Transactions": a TransactWriteItems is all or
nothing, isolated from other writes). moto's backend checks and then writes with no
lock, and its server runs each request in a thread of its own: two Lambda handlers
claiming the same release at once could both succeed (a storm of concurrent alarm
events did, recording one rollback three times). Here every write of the backend runs
under one lock, so its check and its write are not interleaved with another write.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_writing = threading.RLock()
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def _atomic(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def atomic(*args: Any, **kwargs: Any) -> Any:
        with _writing:
            return write(*args, **kwargs)

    return atomic


@functools.cache
def install() -> None:
    for name in WRITES:
        setattr(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name)))
