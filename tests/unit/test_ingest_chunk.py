from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest

from osbatch.config import PipelineConfig, parse_pipeline
from osbatch.contracts import INGEST_DEAD_LETTERS, dead_letter_key
from osbatch.dal import JobTable, TableProgress
from osbatch.ingest.chunk import IngestTarget, ingest_chunk
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.readers import plan_chunks
from osbatch.models import SourceObject
from osbatch.models.ingest import Checkpoint, ChunkResult, IngestChunk
from tests.unit.fake_opensearch import KnnCluster
from tests.unit.helpers import pipeline_dict

OUT, DLQ = "osb-out", "osb-dlq"
KEY = "jobs/msmarco-1/output/part-1.jsonl.out"
UPLOAD = SourceObject(bucket="osb-in", key="input/msmarco/part-1.jsonl")
SOURCE = UPLOAD.uri


def good(n: int, *, line: int | None = None) -> bytes:
    record: dict[str, Any] = {"_id": str(n), "text": f"passage {n}", "SageMakerOutput": [0.1, 0.2, 0.3]}
    if line is not None:
        record["_osbatch"] = {"line": line}
    return json.dumps(record).encode()


def run(
    s3: Any,
    config: PipelineConfig,
    cluster: KnnCluster,
    start: int,
    end: int,
    chunk: int = 0,
    version_base: int | None = None,
    max_line_bytes: int = 64 * 1024 * 1024,
) -> tuple[ChunkResult, list[dict[str, Any]]]:
    job = IngestChunk(
        job_id="msmarco-1",
        pipeline="msmarco",
        source=UPLOAD,
        chunk=chunk,
        bucket=OUT,
        key=KEY,
        start=start,
        end=end,
        version_base=version_base,
    )
    key = dead_letter_key(job.job_id, INGEST_DEAD_LETTERS, chunk)

    def dead_letters(segment: int) -> DeadLetterWriter:
        key = dead_letter_key(job.job_id, INGEST_DEAD_LETTERS, chunk, segment)
        return DeadLetterWriter(s3, DLQ, key, job_id=job.job_id, source=job.source.uri)

    sleeps: list[float] = []
    result = ingest_chunk(
        job,
        target=IngestTarget.of_pipeline(config),
        s3=s3,
        opensearch=cluster,
        dead_letters=dead_letters,
        sleep=sleeps.append,
        max_line_bytes=max_line_bytes,
    )
    assert sleeps == []  # nothing in these tests is retryable
    listed = s3.list_objects_v2(Bucket=DLQ, Prefix=key).get("Contents", [])
    if not listed:
        return result, []
    body = s3.get_object(Bucket=DLQ, Key=key)["Body"].read().decode()
    return result, [json.loads(line) for line in body.splitlines()]


def test_a_mixed_chunk_indexes_the_good_and_dead_letters_the_rest_by_stage(
    s3: Any, config: PipelineConfig
) -> None:
    # Given model output with good lines and one of each failure, plus a blank line
    lines = [
        good(1, line=1),
        b'{"_id": "2", "text": ',
        b'{"_id": "3", "text": "caf\xe9"}',
        b'{"_id": "4", "text": "no vector", "_osbatch": {"line": 4}}',
        b'{"_id": "5", "text": "short", "SageMakerOutput": [0.1, 0.2], "_osbatch": {"line": 5}}',
        b"",
        good(6, line=7),
        b'{"_id": "7", "text": "nan", "SageMakerOutput": [NaN, 0, 0]}',
        b"[1, 2]",
    ]
    data = b"\n".join(lines) + b"\n"
    s3.put_object(Bucket=OUT, Key=KEY, Body=data)
    cluster = KnnCluster()

    # When the whole object is ingested as one chunk
    result, dead = run(s3, config, cluster, 0, len(data))

    # Then the counts are conserved, and blank lines are not records
    assert result == ChunkResult(chunk=0, lines=8, indexed=2, dead_lettered=6)
    assert result.lines == result.indexed + result.dead_lettered
    assert sorted(cluster.docs) == ["1", "6"]
    assert cluster.docs["1"] == {"chunk": "passage 1", "chunk_embedding": [0.1, 0.2, 0.3]}

    # And each failure is dead-lettered with its stage, reason, input line (when known) and original record
    summary = [(d["stage"], d["line"], d["reason"], d["record"]) for d in dead]
    assert summary == [
        ("parse", None, "malformed JSON: unexpected end of data at column 22", '{"_id": "2", "text": '),
        (
            "parse",
            None,
            "not UTF-8: invalid continuation byte at byte 25",
            '{"_id": "3", "text": "caf\ufffd"}',
        ),
        (
            "map",
            4,
            "field_map.chunk_embedding: $.SageMakerOutput not found in record",
            {"_id": "4", "text": "no vector", "_osbatch": {"line": 4}},
        ),
        (
            "parse",
            None,
            "malformed JSON: unexpected character, expected a JSON value at column 49",
            '{"_id": "7", "text": "nan", "SageMakerOutput": [NaN, 0, 0]}',
        ),
        ("parse", None, "expected a JSON object, got an array", [1, 2]),
        (
            "index",
            5,
            "mapper_parsing_exception: failed to parse field [chunk_embedding] of type [knn_vector] in "
            "document with id '5' (caused by illegal_argument_exception: Vector dimension mismatch. "
            "Expected: 3, Actual: 2)",
            {"_id": "5", "text": "short", "SageMakerOutput": [0.1, 0.2], "_osbatch": {"line": 5}},
        ),
    ]
    assert {(d["job_id"], d["source"]) for d in dead} == {("msmarco-1", SOURCE)}
    assert [d["offset"] for d in dead][:2] == [len(lines[0]) + 1, len(lines[0]) + len(lines[1]) + 2]


def test_every_chunking_of_an_object_accounts_for_every_record(s3: Any, config: PipelineConfig) -> None:
    # Given 300 lines, about a fifth of them bad in one way or another
    rng = random.Random(7)
    lines, expected_good = [], set()
    for n in range(300):
        roll = rng.random()
        if roll < 0.05:
            lines.append(b"{broken")
        elif roll < 0.10:
            lines.append(json.dumps({"_id": str(n), "text": "no vector"}).encode())
        elif roll < 0.20:
            lines.append(json.dumps({"_id": str(n), "text": "t", "SageMakerOutput": [0.5]}).encode())
        else:
            lines.append(good(n, line=n + 1))
            expected_good.add(str(n))
    data = b"\n".join(lines)
    s3.put_object(Bucket=OUT, Key=KEY, Body=data)

    for chunk_bytes in (333, 4096, len(data)):
        # When the object is ingested in chunks of this size
        cluster = KnnCluster()
        results = [
            run(s3, config, cluster, c["start"], c["end"], chunk=number)[0]
            for number, c in enumerate(plan_chunks([(KEY, len(data))], chunk_bytes))
        ]

        # Then across chunks every line is counted once, and every good record is indexed
        assert sum(r.lines for r in results) == 300, chunk_bytes
        assert sum(r.indexed for r in results) == len(expected_good)
        assert sum(r.dead_lettered for r in results) == 300 - len(expected_good)
        assert set(cluster.docs) == expected_good


def test_rerunning_a_chunk_overwrites_instead_of_duplicating(s3: Any, config: PipelineConfig) -> None:
    # Given a chunk that was ingested once, with one dead letter
    data = b"\n".join([good(1), good(2), b"{broken"])
    s3.put_object(Bucket=OUT, Key=KEY, Body=data)
    cluster = KnnCluster()
    first, _ = run(s3, config, cluster, 0, len(data))

    # When it is ingested again (a Step Functions retry)
    second, dead = run(s3, config, cluster, 0, len(data))

    # Then the same result is reported, documents are replaced by id, and dead letters are not doubled
    assert first == second == ChunkResult(chunk=0, lines=3, indexed=2, dead_lettered=1)
    assert sorted(cluster.docs) == ["1", "2"]
    assert len(dead) == 1
    assert cluster.requests == 2


def test_a_record_the_model_failed_is_dead_lettered_at_stage_inference(
    s3: Any, config: PipelineConfig
) -> None:
    # Given joined output (steps/support/join.py) with one result and one record the service failed
    failed = {
        "_id": "2",
        "text": "t",
        "_osbatch": {"line": 7, "error": {"code": 400, "message": "Malformed"}},
    }
    body = good(1, line=1) + b"\n" + json.dumps(failed).encode() + b"\n"
    s3.put_object(Bucket=OUT, Key=KEY, Body=body)
    cluster = KnnCluster()
    # When the chunk is ingested
    result, dead = run(s3, config, cluster, 0, len(body))
    # Then the result is indexed, and the failure is a dead letter citing its line and the service's error
    assert (result.indexed, result.dead_lettered) == (1, 1)
    assert list(cluster.docs) == ["1"]
    (letter,) = dead
    assert (letter["stage"], letter["line"], letter["reason"]) == ("inference", 7, "400: Malformed")


def test_oversized_and_truncated_lines_are_one_dead_letter_each(s3: Any, config: PipelineConfig) -> None:
    # Given a line over the line limit between good ones, and a last line cut off mid-record
    oversized = b'{"_id": "big", "text": "' + b"x" * 5000 + b'"}'
    data = b"\n".join([good(1, line=1), oversized, good(2, line=3), b'{"_id": "9", "SageMakerOu'])
    s3.put_object(Bucket=OUT, Key=KEY, Body=data)
    cluster = KnnCluster()

    # When ingested with a 1 KiB line limit
    result, dead = run(s3, config, cluster, 0, len(data), max_line_bytes=1024)

    # Then both good records are indexed and each bad line is exactly one dead letter with its reason
    assert result == ChunkResult(chunk=0, lines=4, indexed=2, dead_lettered=2)
    assert sorted(cluster.docs) == ["1", "2"]
    assert [(d["stage"], d["offset"], d["reason"]) for d in dead] == [
        ("parse", len(good(1, line=1)) + 1, "the line is 5026 bytes, over the 1024-byte line limit"),
        ("parse", len(data) - 25, "malformed JSON: unexpected end of data at column 26"),
    ]
    assert oversized.startswith(dead[0]["record"].encode())


def test_a_duplicate_id_keeps_the_later_line_whatever_order_chunks_run_in(
    s3: Any, config: PipelineConfig
) -> None:
    # Given an id on input lines 1 and 3, in two chunks of the same plan
    first = json.dumps({"_id": "d", "text": "old", "SageMakerOutput": [1, 1, 1], "_osbatch": {"line": 1}})
    later = json.dumps({"_id": "d", "text": "new", "SageMakerOutput": [3, 3, 3], "_osbatch": {"line": 3}})
    data = (first + "\n" + later + "\n").encode()
    s3.put_object(Bucket=OUT, Key=KEY, Body=data)
    cut = len(first) + 1
    cluster = KnnCluster()

    # When the chunk with the later line runs first, then the other
    late, _ = run(s3, config, cluster, cut, len(data), chunk=1, version_base=1 << 32)
    early, dead = run(s3, config, cluster, 0, cut, chunk=0, version_base=1 << 32)

    # Then the later line's document stays, and both records count as indexed, none dead-lettered
    assert cluster.docs["d"]["chunk"] == "new"
    assert (late.indexed, early.indexed, dead) == (1, 1, [])

    # And a later plan (a re-upload) outranks every line of the earlier one
    rerun = json.dumps({"_id": "d", "text": "newer", "SageMakerOutput": [2, 2, 2], "_osbatch": {"line": 1}})
    s3.put_object(Bucket=OUT, Key=KEY, Body=(rerun + "\n").encode())
    run(s3, config, cluster, 0, len(rerun) + 1, version_base=2 << 32)
    assert cluster.docs["d"]["chunk"] == "newer"


class Killed(BaseException):
    """What the Lambda runtime does to an attempt at its timeout: nothing after this point runs."""


class DyingCluster(KnnCluster):
    """Indexes normally until its `dies_at`-th bulk request, which kills the attempt mid-request."""

    def __init__(self, dies_at: int) -> None:
        super().__init__()
        self.dies_at = dies_at
        self.written: list[str] = []  # every document id written, in order, duplicates included

    def bulk(self, *, body: bytes, index: str | None = None) -> dict[str, Any]:
        if self.requests + 1 == self.dies_at:
            raise Killed
        answer = super().bulk(body=body, index=index)
        lines = body.decode().splitlines()
        self.written.extend(json.loads(action)["index"]["_id"] for action in lines[0::2])
        return answer


def dead_letters_stored(s3: Any) -> list[dict[str, Any]]:
    listed = s3.list_objects_v2(Bucket=DLQ, Prefix="dead-letter/msmarco-1/ingest/").get("Contents", [])
    bodies = [s3.get_object(Bucket=DLQ, Key=obj["Key"])["Body"].read().decode() for obj in listed]
    return [json.loads(line) for body in bodies for line in body.splitlines()]


def test_a_chunk_killed_midway_resumes_from_its_checkpoint_with_exact_counts(s3: Any, jobs: JobTable) -> None:
    # Given 400 records, every 10th with a short vector, small bulk requests and frequent checkpoints
    config = parse_pipeline(
        pipeline_dict(
            sink={
                **pipeline_dict()["sink"],
                "bulk": {"max_bytes": 2048, "max_request_bytes": 4096, "concurrency": 2},
            }
        )
    )
    records = []
    for n in range(400):
        vector = [0.1, 0.2] if n % 10 == 0 else [0.1, 0.2, 0.3]
        records.append(json.dumps({"_id": str(n), "text": f"p{n}", "SageMakerOutput": vector}).encode())
    data = b"\n".join(records) + b"\n"
    s3.put_object(Bucket=OUT, Key=KEY, Body=data)
    job = IngestChunk(
        job_id="msmarco-1",
        pipeline="msmarco",
        source=UPLOAD,
        chunk=0,
        bucket=OUT,
        key=KEY,
        start=0,
        end=len(data),
    )

    def attempt(cluster: KnnCluster) -> ChunkResult:
        def dead_letters(segment: int) -> DeadLetterWriter:
            key = dead_letter_key(job.job_id, INGEST_DEAD_LETTERS, 0, segment)
            return DeadLetterWriter(s3, DLQ, key, job_id=job.job_id, source=job.source.uri)

        return ingest_chunk(
            job,
            target=IngestTarget.of_pipeline(config),
            s3=s3,
            opensearch=cluster,
            dead_letters=dead_letters,
            progress=TableProgress(jobs, job.job_id, 0),
            checkpoint_bytes=4096,
        )

    # When the first attempt is killed in its 10th bulk request
    dying = DyingCluster(dies_at=10)
    with pytest.raises(Killed):
        attempt(dying)
    checkpoint = jobs.load_checkpoint(job.job_id, 0)
    assert checkpoint is not None and 0 < checkpoint.offset < len(data)
    assert jobs.chunk_totals(job.job_id, 1).reported == frozenset()  # a killed chunk has not reported

    # And the retry runs against the same index
    retry = DyingCluster(dies_at=0)
    retry.docs, retry.versions = dying.docs, dying.versions
    result = attempt(retry)

    # Then the retry resumed: it wrote only records at or after the checkpoint
    resumed_from = data[: checkpoint.offset].count(b"\n")
    assert sorted(retry.written, key=int) == [str(n) for n in range(resumed_from, 400)]
    # And nothing was lost: every good record is in the index, and the counts are exact
    assert sorted(retry.docs, key=int) == [str(n) for n in range(400) if n % 10]
    assert result == ChunkResult(chunk=0, lines=400, indexed=360, dead_lettered=40)
    # And nothing was duplicated: each bad record is exactly one dead letter across the segments
    dead = dead_letters_stored(s3)
    assert sorted(int(d["record"]["_id"]) for d in dead) == list(range(0, 400, 10))


WAIT_SECONDS = 5  # how long RelayCluster holds a request for the next one before it gives up


class RelayCluster(KnnCluster):
    """Holds each bulk request until the next one arrives (not the one holding `last_id`), and counts the
    times it gave up waiting: a writer that stops sending while requests are in flight shows there."""

    def __init__(self, last_id: str) -> None:
        super().__init__()
        self.last_id = last_id
        self.arrived = [threading.Event() for _ in range(1000)]
        self.gave_up = 0
        self._lock = threading.Lock()
        self._count = 0

    def bulk(self, *, body: bytes, index: str | None = None) -> dict[str, Any]:
        with self._lock:
            number, self._count = self._count, self._count + 1
        self.arrived[number].set()
        last = f'"_id":"{self.last_id}"' in body.decode()
        if not last and not self.arrived[number + 1].wait(timeout=WAIT_SECONDS):
            with self._lock:
                self.gave_up += 1
        return super().bulk(body=body, index=index)


class MemoryProgress:
    """The chunk item in memory."""

    def __init__(self) -> None:
        self.saved: list[Checkpoint] = []

    def load(self) -> None:
        return None

    def save(self, checkpoint: Checkpoint) -> None:
        self.saved.append(checkpoint)


def test_checkpoints_never_stop_the_requests_after_them(s3: Any) -> None:
    # Given 120 records, small requests with two in flight, a checkpoint every ~30 records, and a cluster
    # that answers a request only once the next one has arrived
    config = parse_pipeline(
        pipeline_dict(sink={**pipeline_dict()["sink"], "bulk": {"max_bytes": 1024, "concurrency": 2}})
    )
    data = b"".join(good(n, line=n + 1) + b"\n" for n in range(120))
    s3.put_object(Bucket=OUT, Key=KEY, Body=data)
    cluster, progress = RelayCluster(last_id="119"), MemoryProgress()
    job = IngestChunk(
        job_id="msmarco-1", pipeline="msmarco", source=UPLOAD, chunk=0, bucket=OUT, key=KEY, start=0,
        end=len(data),
    )  # fmt: skip

    # When the chunk is ingested
    result = ingest_chunk(
        job,
        target=IngestTarget.of_pipeline(config),
        s3=s3,
        opensearch=cluster,
        dead_letters=lambda segment: DeadLetterWriter(
            s3, DLQ, dead_letter_key(job.job_id, INGEST_DEAD_LETTERS, 0, segment), job_id="j", source="s"
        ),
        progress=progress,
        checkpoint_bytes=len(data) // 4,
    )

    # Then checkpoints were saved, each with the records before it
    assert len(progress.saved) == 3
    assert [data[: c.offset].count(b"\n") for c in progress.saved] == [c.lines for c in progress.saved]
    assert [c.indexed for c in progress.saved] == [c.lines for c in progress.saved]
    # And no request waited for a checkpoint: the next request was always on its way while one was in flight
    assert cluster.gave_up == 0
    # And every record is indexed, with exact counts
    assert result == ChunkResult(chunk=0, lines=120, indexed=120, dead_lettered=0)
    assert sorted(cluster.docs, key=int) == [str(n) for n in range(120)]


def test_the_fields_prepare_stamped_reach_the_document(s3: Any, config: PipelineConfig) -> None:
    # Given a model output line whose bookkeeping carries the fingerprint and origin Prepare stamped
    fields = {"osbatch_fingerprint": "f" * 32, "osbatch_source": "s3://in/a.jsonl", "osbatch_id": "1"}
    line = {
        "_id": "1",
        "text": "t",
        "SageMakerOutput": [0.1, 0.2, 0.3],
        "_osbatch": {"line": 1, "doc": fields},
    }
    data = json.dumps(line).encode() + b"\n"
    s3.put_object(Bucket=OUT, Key=KEY, Body=data)
    cluster = KnnCluster()
    # When it is ingested
    result, _ = run(s3, config, cluster, 0, len(data))
    # Then the document holds them beside its mapped fields, and no other bookkeeping
    assert result.indexed == 1
    assert cluster.docs["1"] == {"chunk": "t", "chunk_embedding": [0.1, 0.2, 0.3], **fields}
