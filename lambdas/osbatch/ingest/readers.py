"""Lines of an S3 object, read by byte range, and the plan that cuts objects into such ranges.

Ownership rule (docs/architecture.md): a chunk owns every line that *starts* in [start, end). Reading from
start - 1 tells whether a line starts at `start` (the byte before it is a newline) without a second request;
reading past `end` finishes the last owned line. Together, an object's chunks yield each line exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from botocore.exceptions import ClientError

READ_SIZE = 1024 * 1024
# SageMaker output lines are a record plus its vectors, kilobytes; a line this long is not a record, and
# buffering it would exhaust the function's memory.
MAX_LINE_BYTES = 64 * 1024 * 1024


OVERSIZED_PREFIX_BYTES = 1024  # what a dead letter keeps of a line too long to hold


class OversizedLine(bytes):
    """A line longer than the limit: its first bytes, and its full length. It is a record to dead-letter,
    not a reason to fail the chunk: the lines around it are fine."""

    length: int
    limit: int

    def __new__(cls, prefix: bytes, length: int, limit: int) -> OversizedLine:
        line = super().__new__(cls, prefix)
        line.length = length
        line.limit = limit
        return line


def split_lines(
    pieces: Iterable[bytes], base: int, *, max_line_bytes: int, key: str
) -> Iterator[tuple[int, bytes]]:
    """Every newline-terminated line of a stream that begins at byte `base`, with its offset, then the
    unterminated tail if any. Lines exclude their newline. A line over max_line_bytes comes as an
    OversizedLine, and is skipped rather than buffered. Memory is one piece plus one line."""
    held: list[bytes] = []  # the line being assembled when it spans pieces
    held_bytes = 0
    skipped: OversizedLine | None = None  # the line being skipped, once it grew past the limit
    line_start = base
    piece_start = base
    for piece in pieces:
        cut = 0
        newline = piece.find(b"\n")
        while newline >= 0:
            line: bytes
            if skipped is not None:
                line = OversizedLine(skipped, skipped.length + newline - cut, max_line_bytes)
                skipped = None
            elif held:
                held.append(piece[cut:newline])
                line = b"".join(held)
                held.clear()
                held_bytes = 0
            else:
                line = piece[cut:newline]
            if len(line) > max_line_bytes and not isinstance(line, OversizedLine):
                line = OversizedLine(line[:OVERSIZED_PREFIX_BYTES], len(line), max_line_bytes)
            yield line_start, line
            cut = newline + 1
            line_start = piece_start + cut
            newline = piece.find(b"\n", cut)
        if cut < len(piece):
            if skipped is not None:
                skipped.length += len(piece) - cut
            else:
                held.append(piece[cut:])
                held_bytes += len(piece) - cut
                if held_bytes > max_line_bytes:
                    joined = b"".join(held)
                    skipped = OversizedLine(joined[:OVERSIZED_PREFIX_BYTES], len(joined), max_line_bytes)
                    held.clear()
                    held_bytes = 0
        piece_start += len(piece)
    if skipped is not None:
        yield line_start, skipped
    elif held:
        tail = b"".join(held)
        yield line_start, tail


class ObjectStore(Protocol):
    """What ingest needs of S3: ranged reads, and writing or deleting (dead letters). boto3's S3 client is
    one; batch_ingestion/local_files.py is another, for `batch-ingest` of local files."""

    def get_object(self, *, Bucket: str, Key: str, Range: str) -> Any: ...

    def upload_fileobj(
        self, Fileobj: Any, Bucket: str, Key: str, ExtraArgs: Any = None, *, Config: Any = None
    ) -> None: ...

    def delete_object(self, *, Bucket: str, Key: str) -> Any: ...


def iter_chunk_lines(
    s3: ObjectStore,
    bucket: str,
    key: str,
    start: int,
    end: int,
    *,
    read_size: int = READ_SIZE,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line without its newline) for each line that starts in [start, end)."""
    if not 0 <= start < end:
        raise ValueError(f"{key}: bad byte range [{start}, {end})")
    begin = start - 1 if start else 0
    try:
        # Open-ended: the last owned line may run past `end`. Closing the body stops the download.
        response = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={begin}-")
    except ClientError as error:
        # An empty object has no satisfiable range. Any other start beyond the end means the object
        # shrank after planning, and returning nothing would lose records silently.
        if start == 0 and error.response.get("Error", {}).get("Code") == "InvalidRange":
            return
        raise
    body = response["Body"]
    try:
        lines = split_lines(body.iter_chunks(read_size), begin, max_line_bytes=max_line_bytes, key=key)
        if start:
            # The text up to the first newline at or after start - 1 belongs to the previous chunk.
            next(lines, None)
        for offset, line in lines:
            if offset >= end:
                return
            yield offset, line
    finally:
        body.close()


def object_lines(s3: Any, bucket: str, key: str) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line without its newline) for every line of a whole object, streamed."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield from split_lines(body.iter_chunks(READ_SIZE), 0, max_line_bytes=MAX_LINE_BYTES, key=key)
    finally:
        body.close()


def plan_chunks(sizes: Iterable[tuple[str, int]], chunk_bytes: int) -> list[dict[str, Any]]:
    """[{"key", "start", "end"}]: each object cut into byte ranges of at most chunk_bytes, in order.

    Empty objects get no range: they hold no lines (and have no satisfiable byte range).
    """
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be at least 1, got {chunk_bytes}")
    return [
        {"key": key, "start": start, "end": min(start + chunk_bytes, size)}
        for key, size in sizes
        for start in range(0, size, chunk_bytes)
    ]
