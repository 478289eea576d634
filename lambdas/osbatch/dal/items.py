"""What every kind of job-table item shares: the boto3 Table, the clock, conditional writes, paging."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class TableItems:
    def __init__(self, table: Any, clock: Callable[[], str] = utc_now) -> None:
        """`table` is a boto3 DynamoDB Table resource (injected so tests and the local runtime choose it)."""
        self._table = table
        self._clock = clock

    def _conditional(self, **kwargs: Any) -> bool:
        """An update made only if its condition holds; False when it did not."""
        try:
            self._table.update_item(**kwargs)
        except ClientError as error:
            if not condition_failed(error):
                raise
            return False
        return True

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return _pages(self._table.query, kwargs)

    def _scan(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return _pages(self._table.scan, kwargs)


def condition_failed(error: ClientError) -> bool:
    return bool(error.response["Error"]["Code"] == "ConditionalCheckFailedException")


def _pages(operation: Callable[..., dict[str, Any]], kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item of a paginated Query or Scan."""
    while True:
        page = operation(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs = {**kwargs, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB returns Decimals; callers want ints (all our numbers are counts)."""
    return {key: int(value) if isinstance(value, Decimal) else value for key, value in item.items()}
