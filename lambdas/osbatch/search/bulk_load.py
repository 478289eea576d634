"""Index settings for a bulk load into a new index: no refresh and no replicas while it loads, then restored.

Refreshing every second and copying every document to replicas roughly halve bulk throughput; neither helps
an index nobody searches yet. "New" means the index holds no searchable document when PlanIngest runs, or
another job's load into it is under way. A populated index keeps its settings: readers rely on them.

Several jobs can load one index at once, so the settings are held by a lease in the job table (see
JobTable.join_bulk_load): the first loader saves the original settings, the last one to leave restores them,
whether its job completed or failed. PlanIngest joins, Finalize and FailJob leave; both are idempotent, so a
retried step does no harm. If a job joins in the instant between the last leave and the restore, its load
runs with the restored settings: slower, never wrong, and the original settings are never lost.

A node that does not answer when the last loader leaves (down longer than the job's end: make reliability,
scenario h) leaves the restore owed: the lease keeps the saved settings with no loader. Whoever comes next
settles it before anything else: a retried Finalize or FailJob, the next job's PlanIngest, `osbatch replay`.
FailJob must end its job whatever the node's state, so it leaves the restore owed rather than failing.
"""

from __future__ import annotations

from typing import Any

from opensearchpy.exceptions import TransportError

from osbatch.dal import JobTable

REFRESH = "refresh_interval"
REPLICAS = "number_of_replicas"
LOADING = {REFRESH: "-1", REPLICAS: 0}
UNRESTORED_REASON_CHARS = 500  # of the error a restore met, in a failed job's reason


def _current(client: Any, index: str) -> dict[str, Any]:
    """The index's own refresh_interval and replicas; None for a setting left at its default."""
    response: dict[str, Any] = client.indices.get_settings(index=index)
    first: dict[str, Any] = next(iter(response.values()), {})
    settings: dict[str, Any] = first.get("settings", {}).get("index", {})
    return {REFRESH: settings.get(REFRESH), REPLICAS: settings.get(REPLICAS)}


def begin_bulk_load(client: Any, jobs: JobTable, index: str, job_id: str) -> bool:
    """Relax the index for loading if it is new; True if this job now holds the lease."""
    restore_owed(client, jobs, index)  # else a populated index would keep an earlier load's settings
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
        # Not a loader (it never joined, or already left): nothing of its own to undo, but a retried step
        # whose restore failed the first time finds it owed.
        return restore_owed(client, jobs, index)
    if left.remaining:
        return False
    _restore(client, jobs, index, left.saved)
    return True


def restore_owed(client: Any, jobs: JobTable, index: str) -> bool:
    """Restore the settings the last loader left without restoring (see the module); True if it did."""
    saved = jobs.owed_bulk_load_settings(index)
    if saved is None:
        return False
    _restore(client, jobs, index, saved)
    return True


def _restore(client: Any, jobs: JobTable, index: str, saved: dict[str, Any] | None) -> None:
    if saved is not None:
        # A null value resets a setting to the cluster default, which is what an unset one was.
        client.indices.put_settings(index=index, body={"index": saved})
    client.indices.refresh(index=index)  # documents loaded without refresh become searchable now
    jobs.release_bulk_load(index)


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

    def end_or_owe(self, jobs: JobTable, job_id: str) -> str | None:
        """end(), but a restore the node does not take is left owed (see the module) instead of raising:
        the error it met, or None (restored, or nothing of this job's to restore)."""
        try:
            self.end(jobs, job_id)
        except TransportError as error:  # opensearch-py's ConnectionError and the node's HTTP errors
            # error.error: the message alone (str(error) repeats it as its own cause)
            return f"{type(error).__name__}: {error.error}"[:UNRESTORED_REASON_CHARS]
        return None
