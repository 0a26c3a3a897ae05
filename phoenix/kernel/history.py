"""A fleet's releases from the ledger, newest first, through the history index (one
Query, never a Scan): the last N, or those that started in a time range. Each release as
plain values: its id, trigger, AMIs, strategy, outcome, reason, times and steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from phoenix.kernel.attributes import plain

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodb.type_defs import QueryInputTypeDef

# The ledger table's index of release items by fleet and start time (phoenix/release/ledger.py).
HISTORY_INDEX = "history"


@dataclass
class Page:
    """Releases, newest first, and what the queries read (items DynamoDB examined)."""

    releases: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0


def releases(
    dynamodb: DynamoDBClient,
    table: str,
    fleet: str,
    *,
    limit: int | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Page:
    """The fleet's releases newest first: at most `limit`, started at or after `since`
    and before `until` (ISO 8601 UTC times, which compare in time order as strings)."""
    condition = "fleet = :fleet"
    values: dict[str, Any] = {":fleet": {"S": fleet}}
    if since and until:
        condition += " AND started_at BETWEEN :since AND :until"
        values |= {":since": {"S": since}, ":until": {"S": until}}
    elif since:
        condition += " AND started_at >= :since"
        values[":since"] = {"S": since}
    elif until:
        condition += " AND started_at <= :until"
        values[":until"] = {"S": until}
    query: QueryInputTypeDef = {
        "TableName": table,
        "IndexName": HISTORY_INDEX,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
    }
    page = Page()
    while True:
        if limit is not None:
            query["Limit"] = limit - len(page.releases)
        response = dynamodb.query(**query)
        page.read += response.get("ScannedCount", 0)
        page.releases += [plain(item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        if not last or (limit is not None and len(page.releases) >= limit):
            return page
        query["ExclusiveStartKey"] = last
