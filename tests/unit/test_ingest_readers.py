from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.exceptions import ClientError

from osbatch.ingest.readers import OVERSIZED_PREFIX_BYTES, OversizedLine, iter_chunk_lines, plan_chunks

BUCKET = "osb-out"


def lines_with_offsets(data: bytes) -> list[tuple[int, bytes]]:
    """The reference answer: every line of data with its start offset; a final newline ends the last line."""
    pieces = data.split(b"\n")
    if data.endswith(b"\n"):
        pieces.pop()
    result, offset = [], 0
    for piece in pieces:
        result.append((offset, piece))
        offset += len(piece) + 1
    return result


def random_object(rng: random.Random, lines: int) -> bytes:
    # Lines of varied length, including empty ones and bytes that are not UTF-8 or are carriage returns.
    alphabet = b'{}":,abcXYZ0123456789 \r\xc3\xa9\xff'
    body = b"\n".join(
        bytes(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2, 5, 30, 90]))) for _ in range(lines)
    )
    return body + (b"\n" if rng.random() < 0.5 else b"")


def read_all(s3: Any, key: str, size: int, chunk_bytes: int, read_size: int) -> list[tuple[int, bytes]]:
    found: list[tuple[int, bytes]] = []
    for chunk in plan_chunks([(key, size)], chunk_bytes):
        found.extend(iter_chunk_lines(s3, BUCKET, key, chunk["start"], chunk["end"], read_size=read_size))
    return found


def test_chunks_of_random_sizes_yield_every_line_exactly_once(s3: Any) -> None:
    rng = random.Random(20240607)
    for trial in range(12):
        # Given a generated object whose lines straddle chunk boundaries
        data = random_object(rng, lines=rng.randint(1, 60))
        key = f"jobs/j/output/part-{trial}.jsonl.out"
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        for _ in range(6):
            chunk_bytes = rng.randint(1, len(data) + 3)
            read_size = rng.randint(1, 64)

            # When every chunk of a random size is read, in pieces of a random size
            found = read_all(s3, key, len(data), chunk_bytes, read_size)

            # Then together they give every line once, in order, at its offset
            assert found == lines_with_offsets(data), (trial, chunk_bytes, read_size)


def test_one_byte_chunks_still_yield_every_line_once(s3: Any) -> None:
    # Given a small object with empty lines, a leading newline and no final newline
    data = b'\n{"a":1}\n\n{"b":2}\nx'
    s3.put_object(Bucket=BUCKET, Key="tiny", Body=data)

    # When every byte is its own chunk
    found = read_all(s3, "tiny", len(data), chunk_bytes=1, read_size=3)

    # Then each line comes from the chunk holding its first byte
    assert found == [(0, b""), (1, b'{"a":1}'), (9, b""), (10, b'{"b":2}'), (18, b"x")]


class RecordingS3:
    """Delegates to a real (moto) client and records the ranges asked for and the bytes read."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.ranges: list[str] = []
        self.bytes_read = 0

    def get_object(self, **kwargs: Any) -> Any:
        self.ranges.append(kwargs["Range"])
        response = self._s3.get_object(**kwargs)
        body = response["Body"]
        recorder = self

        class CountingBody:
            def iter_chunks(self, size: int) -> Any:
                for piece in body.iter_chunks(size):
                    recorder.bytes_read += len(piece)
                    yield piece

            def close(self) -> None:
                body.close()

        response["Body"] = CountingBody()
        return response


def test_a_chunk_reads_one_byte_before_and_stops_after_its_last_line(s3: Any) -> None:
    # Given a 100 kB object of 100-byte lines
    line = b"x" * 99 + b"\n"
    s3.put_object(Bucket=BUCKET, Key="big", Body=line * 1000)
    recording = RecordingS3(s3)

    # When a chunk in the middle is read in 1 kB pieces
    found = list(iter_chunk_lines(recording, BUCKET, "big", 50_050, 51_000, read_size=1024))  # type: ignore[arg-type]

    # Then it asked for bytes from start - 1, got the lines starting in [50100, 51000), and read ~2 kB, not 50
    assert recording.ranges == ["bytes=50049-"]
    assert [offset for offset, _ in found] == list(range(50_100, 51_000, 100))
    assert recording.bytes_read <= 2048


def test_a_chunk_that_starts_a_line_owns_it(s3: Any) -> None:
    # Given a chunk boundary exactly at the start of a line
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"aaaa\nbbbb\ncccc\n")

    # When the chunks on either side of it are read
    before = list(iter_chunk_lines(s3, BUCKET, "k", 0, 5))
    after = list(iter_chunk_lines(s3, BUCKET, "k", 5, 15))

    # Then the line starting at the boundary belongs to the later chunk only
    assert before == [(0, b"aaaa")]
    assert after == [(5, b"bbbb"), (10, b"cccc")]


def test_a_chunk_inside_one_long_line_owns_nothing(s3: Any) -> None:
    # Given a chunk that lies wholly within a line that started earlier
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"a" * 50 + b"\nb\n")

    # When it is read
    found = list(iter_chunk_lines(s3, BUCKET, "k", 10, 20))

    # Then it yields nothing: the line belongs to the chunk where it starts
    assert found == []


def test_an_empty_object_has_no_lines(s3: Any) -> None:
    # Given an empty object (its byte range 0- is not satisfiable)
    s3.put_object(Bucket=BUCKET, Key="empty", Body=b"")

    # When it is read from 0
    found = list(iter_chunk_lines(s3, BUCKET, "empty", 0, 10))

    # Then there are no lines and no error
    assert found == []


def test_an_object_that_shrank_after_planning_is_an_error_not_silence(s3: Any) -> None:
    # Given a plan made for a bigger object
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"a\n")

    # When a chunk beyond its end is read
    # Then S3's range error surfaces, so the chunk fails instead of reporting zero lines
    with pytest.raises(ClientError):
        list(iter_chunk_lines(s3, BUCKET, "k", 100, 200))


@pytest.mark.parametrize("read_size", [8, 16, 1000])
@pytest.mark.parametrize("last_terminated", [True, False])
def test_a_line_longer_than_the_limit_is_served_as_oversized_and_skipped(
    s3: Any, read_size: int, last_terminated: bool
) -> None:
    # Given a 3000-byte line between two ordinary ones, the last possibly without its newline
    long_line = b"{" + b"z" * 2999
    s3.put_object(
        Bucket=BUCKET, Key="k", Body=b"ok\n" + long_line + b"\nfine" + (b"\n" if last_terminated else b"")
    )

    # When read with a 64-byte limit, in pieces smaller and larger than the limit
    lines = list(iter_chunk_lines(s3, BUCKET, "k", 0, 10_000, read_size=read_size, max_line_bytes=64))

    # Then the long line comes once, as an OversizedLine with its offset, full length and first bytes only,
    # and the lines around it are untouched
    assert [offset for offset, _ in lines] == [0, 3, 3004]
    assert (lines[0][1], lines[2][1]) == (b"ok", b"fine")
    oversized = lines[1][1]
    assert isinstance(oversized, OversizedLine) and oversized.length == 3000
    assert 0 < len(oversized) <= OVERSIZED_PREFIX_BYTES and long_line.startswith(oversized)
    assert not isinstance(lines[2][1], OversizedLine)


def test_an_oversized_last_line_is_still_served(s3: Any) -> None:
    # Given an object ending in an unterminated line over the limit
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"ok\n" + b"y" * 200)
    # When read with a 64-byte limit
    lines = list(iter_chunk_lines(s3, BUCKET, "k", 0, 1000, read_size=16, max_line_bytes=64))
    # Then it comes as oversized, with its length
    assert [offset for offset, _ in lines] == [0, 3]
    assert isinstance(lines[1][1], OversizedLine) and lines[1][1].length == 200


def test_plan_cuts_each_object_into_ranges_and_skips_empty_ones() -> None:
    # Given two objects and an empty one
    sizes = [("a.out", 10), ("empty.out", 0), ("b.out", 25)]

    # When planned in 10-byte chunks
    plan = plan_chunks(sizes, 10)

    # Then each object is covered end to end, the last range is short, and the empty one has none
    assert plan == [
        {"key": "a.out", "start": 0, "end": 10},
        {"key": "b.out", "start": 0, "end": 10},
        {"key": "b.out", "start": 10, "end": 20},
        {"key": "b.out", "start": 20, "end": 25},
    ]


def test_plan_rejects_a_zero_chunk_size() -> None:
    # Given / When / Then: a zero chunk size would plan forever
    with pytest.raises(ValueError, match="chunk_bytes must be at least 1"):
        plan_chunks([("a", 1)], 0)
