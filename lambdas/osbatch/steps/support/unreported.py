"""When a job fails during its Map, or the Map tolerated a failed chunk, the records of the chunks that
never reported become dead letters.

Without this a failed job's model output is neither indexed nor dead-lettered, and `unaccounted` is all a
user learns. Each unreported chunk's lines from its checkpoint on (the prefix before it is already counted:
indexed or dead-lettered) are written as dead letters with the job's failure, so `osbatch replay` can index
them once the cause is fixed. Lines a killed attempt may have indexed after its checkpoint are counted as
dead letters too: not confirmed indexed, and a replay by _id overwrites them harmlessly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osbatch.contracts import INGEST_DEAD_LETTERS, dead_letter_key
from osbatch.dal import ChunkCounts, ChunkTally, JobStore
from osbatch.ingest.chunk import input_line
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.readers import iter_chunk_lines
from osbatch.ingest.records import RecordError, original, parse_record
from osbatch.models import JobState
from osbatch.steps.support.plans import plan_items

if TYPE_CHECKING:
    pass


def dead_letter_unreported(state: JobState, tally: ChunkTally, *, why: str, store: JobStore) -> int:
    """Dead-letter the unreported chunks' records ("not indexed: <why>") and record their counts; how many
    chunks were settled."""
    plan = state.plan
    if plan is None or not tally.missing(plan.chunks):
        return 0
    jobs, s3, dead_letter_bucket = store.table, store.s3, store.dead_letter_bucket
    # A missing chunk may be from any of the job's plans (one per finished remote job).
    items = plan_items(s3, state.job_id, plan)
    missing = set(tally.missing(plan.chunks))
    settled = 0
    for item in items:
        chunk = int(item["chunk"])
        if chunk not in missing:
            continue
        checkpoint = jobs.load_checkpoint(state.job_id, chunk)
        start = checkpoint.offset if checkpoint else int(item["start"])
        done = (
            ChunkCounts(checkpoint.lines, checkpoint.indexed, checkpoint.dead_lettered)
            if checkpoint
            else ChunkCounts()
        )
        key = dead_letter_key(
            state.job_id, INGEST_DEAD_LETTERS, chunk, checkpoint.segment if checkpoint else 0
        )
        writer = DeadLetterWriter(s3, dead_letter_bucket, key, job_id=state.job_id, source=state.source.uri)
        lines = 0
        if start < int(item["end"]):
            for offset, raw in iter_chunk_lines(s3, item["bucket"], item["key"], start, int(item["end"])):
                if not raw.strip():
                    continue
                lines += 1
                try:
                    record = parse_record(raw, at_object_start=offset == 0)
                except RecordError as error:
                    writer.add(stage="parse", reason=str(error), record=original(raw, error), offset=offset)
                    continue
                writer.add(
                    stage="index",
                    reason=f"not indexed: {why}",
                    record=record,
                    line=input_line(record),
                    offset=offset,
                )
        dead = writer.close()
        jobs.put_chunk(state.job_id, chunk, done + ChunkCounts(lines, 0, dead))
        settled += 1
    return settled
