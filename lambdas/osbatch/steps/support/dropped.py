"""Records the model output lacks, for backends whose output carries its records (SageMaker's
JoinSource=Input, and the transform jobs ML Commons runs): found by diffing line numbers, dead-lettered.

Bedrock's and OpenAI's outputs are diffed as PlanIngest joins them onto their records (steps/support/join.py).
SageMaker's need no join, and diffing every output up front would read each byte a second time for a loss
Batch Transform almost never has (a model that answers fewer records than it was sent fails the job). So the
diff runs only when Finalize finds a shortfall, and only on the parts that have one: the parts list
(steps/support/parts.py) says how many records each input part sent, and the chunks' line counts say how many
lines its output object held. For a part that came up short, the part and its output are read once more and
their `_osbatch.line` numbers compared. Each record missing from the output becomes one dead letter (stage
`inference`, reason MISSING_FROM_OUTPUT, the record as the user wrote it), which `osbatch replay` hands back
to upload again.

Memory: sets of line numbers, never records; the records are read a second time from the part, and only
when some are missing. Time: outputs past `budget_bytes` in all are not read. A part whose diff does not
match its shortfall is not guessed at either: an output line too broken to name its record, or one line
answered twice. In both cases the part's shortfall becomes one file-level dead letter
({"file", "records", "prepared_input", "model_output"}) that stands for the missing records, so the counts
still add up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from osbatch import jsonlines
from osbatch.contracts import dropped_records_dead_letter_key, job_parts_key
from osbatch.dal import ChunkTally, JobStore
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.readers import object_lines
from osbatch.models import JobState
from osbatch.record_paths import BOOKKEEPING_KEY
from osbatch.s3uri import s3_uri
from osbatch.steps.support.join import MISSING_FROM_OUTPUT, source_name
from osbatch.steps.support.parts import PreparedPart, read_parts_list
from osbatch.steps.support.plans import plan_items

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Read at about 100 MB/s from S3, a Finalize with 300 s to run diffs this much output in well under half
# of it. A 100,000-record part of 384-dim vectors is about 800 MB.
FINALIZE_DIFF_BYTES = 8 * 1024**3
FAIL_JOB_DIFF_BYTES = 2 * 1024**3  # FailJob runs for at most a minute
NOT_DIFFED = "not diffed within the step's read budget"
UNMATCHED = (
    "its output has lines that name no record or name one twice, so which records are missing is unknown"
)

Objects = dict[tuple[str, str], int]  # (bucket, key) -> size, of one part's output


def dead_letter_dropped(
    state: JobState,
    tally: ChunkTally,
    *,
    store: JobStore,
    budget_bytes: int,
) -> int:
    """Dead-letter the records missing from the ingested parts' output; how many. A part with no shortfall
    is never read. A re-run writes the same objects again."""
    if state.prepared is None or state.plan is None:
        return 0
    s3, output_bucket, dead_letter_bucket = store.s3, store.output_bucket, store.dead_letter_bucket
    ingested = {remote.index for remote in state.remotes if remote.ingested}
    lines: dict[str, int] = defaultdict(int)
    outputs: dict[str, Objects] = defaultdict(dict)
    for item in plan_items(s3, state.job_id, state.plan):
        name = source_name(item["key"])
        lines[name] += tally.lines.get(int(item["chunk"]), 0)
        where = (item["bucket"], item["key"])
        outputs[name][where] = max(outputs[name].get(where, 0), int(item["end"]))
    try:
        parts = read_parts_list(s3, output_bucket, job_parts_key(state.job_id))
    except s3.exceptions.NoSuchKey:
        return 0  # prepared by a version without the parts list: the shortfall stays reported, unaccounted
    dropped, budget = 0, budget_bytes
    for part in parts:
        short = part.records - lines[part.name]
        if part.job not in ingested or short <= 0:
            continue
        letters = DeadLetterWriter(
            s3,
            dead_letter_bucket,
            dropped_records_dead_letter_key(state.job_id, part.name),
            job_id=state.job_id,
            source=state.source.uri,
        )
        objects = outputs[part.name]
        missing: set[int] | None = None
        if sum(objects.values()) <= budget:
            budget -= sum(objects.values())
            missing = _missing(s3, output_bucket, part, objects)
        if missing is not None and len(missing) == short:
            for line, record in _records(s3, output_bucket, part, missing):
                letters.add(stage="inference", reason=MISSING_FROM_OUTPUT, record=record, line=line)
        else:
            why = NOT_DIFFED if missing is None else UNMATCHED
            letters.add(
                stage="inference",
                reason=f"{short} records are missing from the model output of {part.name} ({why})",
                record=_file_level(state, output_bucket, part, short, objects),
            )
        letters.close()
        dropped += short
    return dropped


def _missing(s3: S3Client, bucket: str, part: PreparedPart, objects: Objects) -> set[int]:
    """The line numbers the part sent that no line of its output names."""
    missing = set(_line_numbers(s3, bucket, part.key))
    for where in objects:
        missing.difference_update(_line_numbers(s3, *where))
    return missing


def _line_numbers(s3: S3Client, bucket: str, key: str) -> Iterator[int]:
    for _, raw in object_lines(s3, bucket, key):
        line = _line_of(raw) if raw.strip() else None
        if line is not None:
            yield line


def _line_of(raw: bytes) -> int | None:
    try:
        bookkeeping = jsonlines.loads(raw).get(BOOKKEEPING_KEY)
    except (ValueError, AttributeError):
        return None  # not a JSON object: the chunk that read it dead-lettered it already
    line = bookkeeping.get("line") if isinstance(bookkeeping, dict) else None
    return line if isinstance(line, int) else None


def _records(s3: S3Client, bucket: str, part: PreparedPart, missing: set[int]) -> list[tuple[int, Any]]:
    """(line, the record as the user wrote it) for each missing line, in line order."""
    found = []
    for _, raw in object_lines(s3, bucket, part.key):
        if not raw.strip():
            continue
        record = jsonlines.loads(raw)
        line = record.pop(BOOKKEEPING_KEY, {}).get("line")
        if line in missing:
            found.append((line, record))
    return sorted(found, key=lambda pair: pair[0])


def _file_level(
    state: JobState, bucket: str, part: PreparedPart, records: int, objects: Objects
) -> dict[str, Any]:
    return {
        "file": state.source.uri,
        "records": records,
        "prepared_input": s3_uri(bucket, part.key),
        "model_output": [s3_uri(*where) for where in objects],
    }
