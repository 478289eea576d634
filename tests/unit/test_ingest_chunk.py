from __future__ import annotations

import json
import random
from typing import Any

from osbatch.config import PipelineConfig
from osbatch.contracts import dead_letter_key
from osbatch.ingest.chunk import ingest_chunk
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.models import ChunkResult, IngestChunk
from osbatch.ingest.readers import plan_chunks
from osbatch.models import SourceObject

OUT, DLQ = "osb-out", "osb-dlq"
KEY = "jobs/msmarco-1/output/part-1.jsonl.out"
UPLOAD = SourceObject(bucket="osb-in", key="input/msmarco/part-1.jsonl")
SOURCE = UPLOAD.uri


class KnnCluster:
    """A fake OpenSearch bulk endpoint with a 3-dimension knn_vector mapping: keeps documents by id and
    rejects vectors of another length the way OpenSearch does."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.requests = 0

    def bulk(self, *, body: bytes, index: str | None = None) -> dict[str, Any]:
        self.requests += 1
        lines = body.decode().splitlines()
        results = []
        for action, source in zip(lines[0::2], lines[1::2], strict=True):
            doc_id = json.loads(action)["index"]["_id"]
            doc = json.loads(source)
            vector = doc.get("chunk_embedding")
            if len(vector) != 3:
                error = {
                    "type": "mapper_parsing_exception",
                    "reason": (
                        "failed to parse field [chunk_embedding] of type [knn_vector] "
                        f"in document with id '{doc_id}'"
                    ),
                    "caused_by": {
                        "type": "illegal_argument_exception",
                        "reason": f"Vector dimension mismatch. Expected: 3, Actual: {len(vector)}",
                    },
                }
                results.append({"index": {"_id": doc_id, "status": 400, "error": error}})
            else:
                self.docs[doc_id] = doc
                results.append({"index": {"_id": doc_id, "status": 201}})
        return {"errors": any(r["index"]["status"] != 201 for r in results), "items": results}


def good(n: int, *, line: int | None = None) -> bytes:
    record: dict[str, Any] = {"_id": str(n), "text": f"passage {n}", "SageMakerOutput": [0.1, 0.2, 0.3]}
    if line is not None:
        record["_osbatch"] = {"line": line}
    return json.dumps(record).encode()


def run(
    s3: Any, config: PipelineConfig, cluster: KnnCluster, start: int, end: int, chunk: int = 0
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
    )
    key = dead_letter_key(job.job_id, "ingest", chunk)
    dead_letters = DeadLetterWriter(s3, DLQ, key, job_id=job.job_id, source=job.source.uri)
    sleeps: list[float] = []
    result = ingest_chunk(
        job, config=config, s3=s3, opensearch=cluster, dead_letters=dead_letters, sleep=sleeps.append
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
    # Given joined output (steps/join.py) with one result and one record the service failed
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
