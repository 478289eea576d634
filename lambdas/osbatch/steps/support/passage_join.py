"""Join a chunked record's passage outputs into one record, whatever order the service wrote them in.

Each output line answers one passage (SageMaker, ML Commons, Bedrock) or several (an OpenAI embeddings
request whose input is a list: `data[i]` answers its first passage + i). A record is complete when every
passage 0 .. passages-1 has a vector; it then becomes one joined line

    {**source record, "_osbatch": {"line": n, "passages": [{"text", "start", "end", "vector"}, ...]}}

which the index layout (ingest/passage_layout.py) turns into one document with nested passages, or one
document per passage. A record with a passage the model refused becomes `{..., "_osbatch": {"line": n,
"error": <the model's error>}}`, and one whose passages came back incomplete (a silent drop) an error naming
the missing passages: both are dead-lettered whole at stage `inference`, never indexed half-embedded.

Memory: output lines are spilled to a temporary file as they are read, and only their offsets are kept per
record (a part's vectors would take hundreds of MB as Python floats); each record's lines are then read back
in turn. So a record holds at most its own vectors in memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from osbatch import jsonlines
from osbatch.backends.base import BatchBackend, NotAnEmbedding, OutputObject
from osbatch.ingest.readers import object_lines
from osbatch.record_paths import BOOKKEEPING_KEY, ERROR_KEY
from osbatch.steps.support.join import SPOOL_BYTES, Usage, unmatched

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A record's text, from its source record (source.text_path): what the passages' offsets index.
TextOf = Callable[[dict[str, Any]], str]
SHOWN_MISSING = 5  # passage numbers a reason lists before "..."


class PassageJoiner:
    """join.PartJoiner for chunked pipelines; counts the passages of the records it joined whole."""

    def __init__(self, text_of: TextOf) -> None:
        self._text_of = text_of
        self.embedded = 0

    def __call__(
        self,
        backend: BatchBackend,
        s3: S3Client,
        output: OutputObject,
        records: dict[int, bytes],
        bucket: str,
        key: str,
        usage: Usage,
    ) -> tuple[int, set[int]]:
        size = 0
        offsets: dict[int, list[tuple[int, int, int]]] = {}  # line -> (first passage, offset, length)
        errors: dict[int, dict[str, Any]] = {}
        with (
            tempfile.TemporaryFile() as spill,
            tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as joined,
        ):

            def emit(record: dict[str, Any]) -> None:
                nonlocal size
                data = jsonlines.dump_line(record)
                joined.write(data)
                size += len(data)

            for _, raw in object_lines(s3, output.bucket, output.key):
                if not raw.strip():
                    continue
                try:
                    parsed = backend.parse_output(jsonlines.loads(raw))
                except ValueError as error:
                    emit(unmatched(raw, f"the output line is not valid JSON: {error}"))
                    continue
                usage.add(parsed.input_tokens)
                if parsed.line is None or parsed.line not in records or parsed.passage is None:
                    emit(unmatched(raw, "the output line's record id matches no passage that was sent"))
                elif parsed.error is not None:
                    errors.setdefault(parsed.line, parsed.error)  # the first refusal is the record's reason
                else:
                    offsets.setdefault(parsed.line, []).append((parsed.passage, spill.tell(), len(raw)))
                    spill.write(raw)
            answered = offsets.keys() | errors.keys()
            for line in sorted(answered):
                emit(
                    self._record(backend, line, records[line], errors.get(line), offsets.get(line, []), spill)
                )
            joined.seek(0)
            s3.upload_fileobj(joined, bucket, key)
        return size, set(answered)

    def _record(
        self,
        backend: BatchBackend,
        line: int,
        raw: bytes,
        error: dict[str, Any] | None,
        pieces: list[tuple[int, int, int]],
        spill: Any,
    ) -> dict[str, Any]:
        record: dict[str, Any] = jsonlines.loads(raw)
        bookkeeping = record[BOOKKEEPING_KEY]
        spans: list[list[int]] = bookkeeping["spans"]
        # What else Prepare put in the bookkeeping (osbatch.incremental's document fields) travels on.
        kept = {name: value for name, value in bookkeeping.items() if name not in ("spans", "passages")}
        if error is None:
            vectors, error = _vectors(backend, len(spans), pieces, spill)
        if error is not None:
            record[BOOKKEEPING_KEY] = {**kept, "line": line, ERROR_KEY: error}
            return record
        text = self._text_of(record)
        passages = [
            {"text": text[start:end], "start": start, "end": end, "vector": vector}
            for (start, end), vector in zip(spans, vectors, strict=True)
        ]
        record[BOOKKEEPING_KEY] = {**kept, "line": line, "passages": passages}
        self.embedded += len(passages)
        return record


def _vectors(
    backend: BatchBackend, count: int, pieces: list[tuple[int, int, int]], spill: Any
) -> tuple[list[Any], dict[str, Any] | None]:
    """The record's vectors in passage order, or the error that keeps it from being indexed."""
    vectors: list[Any] = [None] * count
    for first, offset, length in pieces:
        spill.seek(offset)
        result = backend.parse_output(jsonlines.loads(spill.read(length))).result
        try:
            answered = backend.embeddings(result)
        except NotAnEmbedding as refusal:
            return [], {"code": "not_an_embedding", "message": str(refusal)}
        for number, vector in enumerate(answered, start=first):
            if 0 <= number < count:
                vectors[number] = vector
    missing = [number for number, vector in enumerate(vectors) if vector is None]
    if not missing:
        return vectors, None
    shown = ", ".join(str(number) for number in missing[:SHOWN_MISSING])
    more = ", ..." if len(missing) > SHOWN_MISSING else ""
    return [], {
        "code": "missing_passages",
        "message": f"{len(missing)} of the record's {count} passages (passage {shown}{more}) are missing "
        "from the model output; a record is indexed only with all its passages, so upload it again",
    }
