"""Index settings for a bulk load into a new index: no refresh and no replicas while it loads, then restored.

Refreshing every second and copying every document to replicas roughly halve bulk throughput; neither helps
an index nobody searches yet. "New" means the index holds no searchable document when PlanIngest runs, or
another job's load into it is under way. A populated index keeps its settings: readers rely on them.

Several jobs can load one index at once, so the settings are held by a lease in the job table (see
JobTable.join_bulk_load): the first loader saves the original settings, the last one to leave restores them,
whether its job completed or failed. PlanIngest joins, Finalize and FailJob leave; both are idempotent, so a
retried step does no harm. If a job joins in the instant between the last leave and the restore, its load
runs with the restored settings: slower, never wrong, and the original settings are never lost.
"""

from __future__ import annotations

from typing import Any

from osbatch.dal import JobTable

REFRESH = "refresh_interval"
REPLICAS = "number_of_replicas"
LOADING = {REFRESH: "-1", REPLICAS: 0}


def _current(client: Any, index: str) -> dict[str, Any]:
    """The index's own refresh_interval and replicas; None for a setting left at its default."""
    response: dict[str, Any] = client.indices.get_settings(index=index)
    first: dict[str, Any] = next(iter(response.values()), {})
    settings: dict[str, Any] = first.get("settings", {}).get("index", {})
    return {REFRESH: settings.get(REFRESH), REPLICAS: settings.get(REPLICAS)}


def begin_bulk_load(client: Any, jobs: JobTable, index: str, job_id: str) -> bool:
    """Relax the index for loading if it is new; True if this job now holds the lease."""
    if not jobs.bulk_load_active(index) and _searchable_docs(client, index) > 0:
        return False
    first = jobs.join_bulk_load(index, job_id)
    if first:
        # Read after joining: a previous lease is only released once its settings are restored (see module).
        jobs.save_bulk_load_settings(index, _current(client, index))
    client.indices.put_settings(index=index, body={"index": LOADING})
    return True


def end_bulk_load(client: Any, jobs: JobTable, index: str, job_id: str) -> bool:
    """Leave the lease; the last loader restores the saved settings. True if this call restored them."""
    left = jobs.leave_bulk_load(index, job_id)
    if left is None:
        return False  # not a loader (it never joined, or already left): nothing to undo
    if left.remaining:
        return False
    if left.saved is not None:
        # A null value resets a setting to the cluster default, which is what an unset one was.
        client.indices.put_settings(index=index, body={"index": left.saved})
    client.indices.refresh(index=index)  # documents loaded without refresh become searchable now
    jobs.release_bulk_load(index)
    return True


def _searchable_docs(client: Any, index: str) -> int:
    return int(client.count(index=index)["count"])


class IndexLoad:
    """The index a job bulk-loads and its client, shared by PlanIngest, Finalize and FailJob."""

    def __init__(self, client: Any, index: str) -> None:
        self.client = client
        self.index = index

    def begin(self, jobs: JobTable, job_id: str) -> bool:
        return begin_bulk_load(self.client, jobs, self.index, job_id)

    def end(self, jobs: JobTable, job_id: str) -> bool:
        return end_bulk_load(self.client, jobs, self.index, job_id)
