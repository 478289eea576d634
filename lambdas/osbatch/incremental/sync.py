"""After a job: the documents an earlier version of the same S3 key wrote that the new version lacks.

Every document osbatch writes carries the S3 object it came from and the job that last wrote it
(contracts.SOURCE_FIELD, JOB_FIELD; an unchanged record's document is re-stamped by Prepare). Once a job
has completed, a document with this job's source and another job is one the new version no longer has:
`source.sync: keep` (the default) leaves them and the report counts them as `stale`; `mirror` deletes them
with `_delete_by_query` (OpenSearch, "Delete by query":
https://docs.opensearch.org/latest/api-reference/document-apis/delete-by-query/) and counts them as
`deleted`. Only a COMPLETED job mirrors: in any other ending some records of the new version were not
written, and their old documents would be deleted with nothing in their place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osbatch.contracts import JOB_FIELD, SOURCE_FIELD


@dataclass(frozen=True)
class SyncResult:
    stale: int = 0  # left in the index (sync: keep, or a job that did not complete)
    deleted: int = 0  # deleted (sync: mirror)
    note: str | None = None


def _query(source_uri: str, job_id: str) -> dict[str, Any]:
    return {
        "query": {
            "bool": {
                "filter": [{"term": {SOURCE_FIELD: source_uri}}],
                "must_not": [{"term": {JOB_FIELD: job_id}}],
            }
        }
    }


def sync_source(
    client: Any, index: str, *, source_uri: str, job_id: str, mirror: bool, completed: bool
) -> SyncResult:
    """Count, or with `mirror` on a completed job delete, the documents of `source_uri` this job did not
    write. The index is refreshed first, so the query sees every document the job wrote."""
    client.indices.refresh(index=index)
    body = _query(source_uri, job_id)
    if mirror and completed:
        response = client.delete_by_query(
            index=index, body=body, params={"conflicts": "proceed", "refresh": "true"}
        )
        return SyncResult(deleted=int(response.get("deleted", 0)))
    stale = int(client.count(index=index, body=body).get("count", 0))
    note = None
    if mirror and stale:
        note = (
            f"source.sync is mirror, but the job did not complete: {stale} documents of an earlier "
            "version were kept"
        )
    return SyncResult(stale=stale, note=note)
