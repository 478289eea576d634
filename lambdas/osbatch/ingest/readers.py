"""Lines of an S3 object, read by byte range, and the plan that cuts objects into such ranges.

Ownership rule (docs/architecture.md): a chunk owns every line that *starts* in [start, end). Reading from
start - 1 tells whether a line starts at `start` (the byte before it is a newline) without a second request;
reading past `end` finishes the last owned line. Together, an object's chunks yield each line exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

READ_SIZE = 1024 * 1024
# SageMaker output lines are a record plus its vectors, kilobytes; a line this long is not a record, and
# buffering it would exhaust the function's memory.
MAX_LINE_BYTES = 64 * 1024 * 1024


class LineTooLongError(ValueError):
    def __init__(self, key: str, offset: int, limit: int) -> None:
        super().__init__(f"{key}: the line at byte {offset} is longer than {limit} bytes")


def split_lines(
    pieces: Iterable[bytes], base: int, *, max_line_bytes: int, key: str
) -> Iterator[tuple[int, bytes]]:
    """Every newline-terminated line of a stream that begins at byte `base`, with its offset, then the
    unterminated tail if any. Lines exclude their newline. Memory is one piece plus one line."""
    held: list[bytes] = []  # the line being assembled when it spans pieces
    held_bytes = 0
    line_start = base
    piece_start = base
    for piece in pieces:
        cut = 0
        newline = piece.find(b"\n")
        while newline >= 0:
            if held:
                held.append(piece[cut:newline])
                line = b"".join(held)
                held.clear()
                held_bytes = 0
            else:
                line = piece[cut:newline]
            yield line_start, line
            cut = newline + 1
            line_start = piece_start + cut
            newline = piece.find(b"\n", cut)
        if cut < len(piece):
            held.append(piece[cut:])
            held_bytes += len(piece) - cut
            if held_bytes > max_line_bytes:
                raise LineTooLongError(key, line_start, max_line_bytes)
        piece_start += len(piece)
    if held:
        yield line_start, b"".join(held)


def iter_chunk_lines(
    s3: S3Client,
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
