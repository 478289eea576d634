"""S3 streaming for the emulators: lines across chunk boundaries, bounded lines, part-by-part output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.emulators import s3_io
from local.emulators.s3_io import LineTooLong, S3Location, S3ObjectWriter, iter_lines

BUCKET = "osb-io"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_lines_split_across_read_chunks_come_back_whole(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an object with CRLF and LF lines, no final newline, read 7 bytes at a time
    s3.put_object(Bucket=BUCKET, Key="a.jsonl", Body=b'{"a":1}\r\n{"b":"long value"}\n\n{"c":3}')
    monkeypatch.setattr(s3_io, "READ_CHUNK_BYTES", 7)

    # When its lines are iterated
    lines = list(iter_lines(s3, S3Location(BUCKET, "a.jsonl")))

    # Then each line is whole, without its line ending, blank lines included
    assert lines == [b'{"a":1}', b'{"b":"long value"}', b"", b'{"c":3}']


def test_a_line_past_the_bound_stops_the_read(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a 100-byte line and a 10-byte bound
    s3.put_object(Bucket=BUCKET, Key="big.jsonl", Body=b"x" * 100 + b"\n")
    monkeypatch.setattr(s3_io, "READ_CHUNK_BYTES", 16)

    # When / Then reading refuses to buffer the whole line
    with pytest.raises(LineTooLong):
        list(iter_lines(s3, S3Location(BUCKET, "big.jsonl"), max_line_bytes=10))


def test_small_output_is_one_object_on_commit(s3: Any) -> None:
    # Given a writer with a little data
    writer = S3ObjectWriter(s3, S3Location(BUCKET, "out/a.out"), "application/json")
    writer.write(b"line\n")

    # When / Then nothing is visible before commit, and the data is after
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")
    writer.commit()
    assert s3.get_object(Bucket=BUCKET, Key="out/a.out")["Body"].read() == b"line\n"


def test_large_output_goes_up_in_parts(s3: Any) -> None:
    # Given a writer with 5 MiB parts (S3's minimum) and 11 MiB of data written in pieces
    piece = b"y" * (1024 * 1024)
    writer = S3ObjectWriter(
        s3, S3Location(BUCKET, "out/big.out"), "application/json", part_bytes=5 * 1024 * 1024
    )
    for _ in range(11):
        writer.write(piece)

    # When it is committed
    writer.commit()

    # Then the object is whole, and it was assembled from parts
    head = s3.head_object(Bucket=BUCKET, Key="out/big.out")
    assert head["ContentLength"] == 11 * len(piece)
    assert head["ETag"].strip('"').endswith("-3")


def test_abort_leaves_no_object_and_no_upload(s3: Any) -> None:
    # Given a writer that already sent a part
    writer = S3ObjectWriter(
        s3, S3Location(BUCKET, "out/c.out"), "application/json", part_bytes=5 * 1024 * 1024
    )
    writer.write(b"z" * (5 * 1024 * 1024))

    # When it is aborted
    writer.abort()

    # Then neither the object nor the multipart upload remains
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=BUCKET)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://b/k/x.jsonl", S3Location("b", "k/x.jsonl")),
        ("s3://b", S3Location("b", "")),
        ("https://b/k", S3Location("b", "k")),
    ],
)
def test_s3_uris_parse(uri: str, expected: S3Location) -> None:
    # Given / When / Then both URI forms SageMaker accepts parse to bucket and key
    assert S3Location.parse(uri) == expected
