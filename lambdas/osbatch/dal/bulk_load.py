"""Bulk-load lease items (`bulk-load#<index>`, `lease`): the jobs loading one index, and the index settings
the first of them saved before relaxing them (search/bulk_load.py restores them when the last one leaves)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from osbatch.dal.items import TableItems, condition_failed
from osbatch.dal.keys import lease_key


@dataclass(frozen=True)
class LeaseLeft:
    """What a bulk-load lease holds after one loader left it."""

    remaining: frozenset[str]
    saved: dict[str, Any] | None


class BulkLoadLeases(TableItems):
    def bulk_load_active(self, index: str) -> bool:
        response = self._table.get_item(Key=lease_key(index), ConsistentRead=True)
        return bool(response.get("Item", {}).get("loaders"))

    def join_bulk_load(self, index: str, job_id: str) -> bool:
        """Add job_id to the index's loaders; True if no settings are saved yet (this job saves them)."""
        response = self._table.update_item(
            Key=lease_key(index),
            UpdateExpression="ADD loaders :job",
            ExpressionAttributeValues={":job": {job_id}},
            ReturnValues="ALL_NEW",
        )
        return "saved" not in response.get("Attributes", {})

    def save_bulk_load_settings(self, index: str, saved: dict[str, Any]) -> None:
        """Keep the first loader's reading only: a later one may read the already-relaxed settings."""
        self._conditional(
            Key=lease_key(index),
            UpdateExpression="SET saved = :saved",
            ConditionExpression="attribute_not_exists(saved)",
            ExpressionAttributeValues={":saved": saved},
        )

    def leave_bulk_load(self, index: str, job_id: str) -> LeaseLeft | None:
        """Remove job_id from the loaders; None if it was not one of them."""
        try:
            response = self._table.update_item(
                Key=lease_key(index),
                UpdateExpression="DELETE loaders :job",
                ConditionExpression="contains(loaders, :id)",
                ExpressionAttributeValues={":job": {job_id}, ":id": job_id},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if condition_failed(error):
                return None
            raise
        item = response.get("Attributes", {})
        return LeaseLeft(frozenset(item.get("loaders", set())), item.get("saved"))

    def owed_bulk_load_settings(self, index: str) -> dict[str, Any] | None:
        """The settings a lease still holds after its last loader left without restoring them (the node did
        not answer), or None: a restore is owed only when no job is loading."""
        response = self._table.get_item(Key=lease_key(index), ConsistentRead=True)
        item = response.get("Item", {})
        if item.get("loaders") or "saved" not in item:
            return None
        saved: dict[str, Any] = item["saved"]
        return saved

    def release_bulk_load(self, index: str) -> None:
        """Forget the saved settings once restored, unless a loader joined meanwhile (it restores them)."""
        self._conditional(
            Key=lease_key(index),
            UpdateExpression="REMOVE saved",
            ConditionExpression="attribute_not_exists(loaders)",
        )
