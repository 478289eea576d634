from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from osbatch.contracts import INGEST_DEAD_LETTERS, dead_letter_key
from osbatch.ingest.dead_letter import DeadLetterWriter

BUCKET = "osb-dlq"
SOURCE = "s3://osb-in/input/msmarco/part-1.jsonl"


def new_writer(s3: Any, key: str = "dead-letter/j-1/ingest/00003.jsonl") -> DeadLetterWriter:
    return DeadLetterWriter(s3, BUCKET, key, job_id="j-1", source=SOURCE)


def stored(s3: Any, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_key_follows_the_contract_layout() -> None:
    # Given / When a chunk's dead-letter key is made
    key = dead_letter_key("msmarco-3f2a", INGEST_DEAD_LETTERS, 3)

    # Then it is dead-letter/<job_id>/<stage>/<part>.jsonl, part zero-padded so keys sort by chunk
    assert key == "dead-letter/msmarco-3f2a/ingest/00003.jsonl"


def test_records_are_written_as_one_json_line_each(s3: Any) -> None:
    # Given a writer
    writer = new_writer(s3)

    # When a parsed record and an undecodable raw line are added, and the writer closed
    writer.add(
        stage="map", reason="field_map.v: $.v not found in record", record={"_id": "1"}, line=4, offset=120
    )
    writer.add(stage="parse", reason="not UTF-8: invalid start byte at byte 1", record=b"{\xff}", offset=300)
    count = writer.close()

    # Then one object holds both, in the contract's shape, the raw line decoded with replacement characters
    assert count == 2
    assert stored(s3, writer.key) == [
        {
            "job_id": "j-1",
            "source": SOURCE,
            "line": 4,
            "offset": 120,
            "stage": "map",
            "reason": "field_map.v: $.v not found in record",
            "record": {"_id": "1"},
        },
        {
            "job_id": "j-1",
            "source": SOURCE,
            "line": None,
            "offset": 300,
            "stage": "parse",
            "reason": "not UTF-8: invalid start byte at byte 1",
            "record": "{\ufffd}",
        },
    ]
    assert s3.head_object(Bucket=BUCKET, Key=writer.key)["ContentType"] == "application/x-ndjson"


def test_a_retried_chunk_replaces_its_dead_letters(s3: Any) -> None:
    # Given a first attempt that dead-lettered two records
    first = new_writer(s3)
    first.add(stage="index", reason="HTTP 503 (gave up after 5 retries)", record={"_id": "1"})
    first.add(stage="index", reason="HTTP 503 (gave up after 5 retries)", record={"_id": "2"})
    first.close()

    # When the retry dead-letters one
    second = new_writer(s3)
    second.add(stage="map", reason="r", record={"_id": "2"})
    second.close()

    # Then only the retry's dead letter remains
    assert [entry["record"] for entry in stored(s3, second.key)] == [{"_id": "2"}]


def test_a_retry_without_dead_letters_removes_the_stale_object(s3: Any) -> None:
    # Given a first attempt that left a dead letter
    first = new_writer(s3)
    first.add(stage="index", reason="timeout", record={"_id": "1"})
    first.close()

    # When the retry has none
    count = new_writer(s3).close()

    # Then no object remains, so the dead letters match the chunk's counts
    assert count == 0
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_adding_after_close_is_an_error(s3: Any) -> None:
    # Given a closed writer
    writer = new_writer(s3)
    writer.close()

    # When another record is added
    # Then it raises rather than losing the record
    with pytest.raises(ValueError, match="would be lost"):
        writer.add(stage="map", reason="r", record={})
    assert writer.close() == 0


def test_many_dead_letters_are_spooled_to_disk_not_held_in_memory(s3: Any) -> None:
    # Given a writer, and a failed 8 MiB bulk request's worth of records (64-dim vectors, a 429's reason)
    writer = new_writer(s3)
    record = {"_id": "load-00000001", "vector": [0.1234] * 64}
    reason = "HTTP 429 rejected_execution_exception: rejected execution of coordinating operation " * 2
    tracemalloc.start()
    try:
        # When they are all added
        for n in range(16_000):
            writer.add(stage="index", reason=reason, record=record, line=n + 1, offset=n * 500)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then about 9 MiB of letters went through at most 2 MiB of memory (the rest waits in a file for the
    # upload), and all of them are stored
    assert peak < 2 * 2**20
    assert writer.close() == 16_000
    assert len(stored(s3, writer.key)) == 16_000
