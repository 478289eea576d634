from __future__ import annotations

import json
from typing import Any

import pytest

from osbatch.backends.base import InputLimits
from osbatch.config import PipelineConfig, parse_pipeline
from osbatch.dal import JobTable
from osbatch.models import JobState, SourceObject
from osbatch.search.index import IndexMappingConflict
from osbatch.steps.prepare import prepare_job
from osbatch.steps.support.ports import DeployedPipeline
from tests.unit.fake_opensearch import FakeClient, FakeIndices
from tests.unit.helpers import ListDeadLetters, job_store, pipeline_dict, run_prepare, stamped


def read_parts(s3: Any) -> list[list[dict[str, Any]]]:
    keys = sorted(
        item["Key"]
        for item in s3.list_objects_v2(Bucket="osb-out", Prefix="jobs/msmarco-1/input/")["Contents"]
    )
    return [
        [json.loads(line) for line in s3.get_object(Bucket="osb-out", Key=key)["Body"].read().splitlines()]
        for key in keys
    ]


def test_bad_lines_are_dead_lettered_with_their_reason(
    config: PipelineConfig, s3: Any, jobs: JobTable
) -> None:
    # Given a file mixing good records with every kind of bad line
    body = b"\n".join(
        [
            b'{"_id": "1", "text": "good one"}',
            b'{"_id": "2", "text": broken',
            b'{"_id": "3", "text": "caf\xe9"}',
            b'{"text": "no id"}',
            b'{"_id": "5"}',
            b'{"_id": "6", "text": 42}',
            b"[1, 2]",
            b"",
            b'{"_id": 7, "text": "numeric ids are fine"}',
        ]
    )
    # When it is prepared
    result, dead = run_prepare(config, s3, jobs, body + b"\n")
    # Then good records go to the model input and each bad line is dead-lettered with why
    assert result.prepared.model_dump(exclude={"input_uri", "jobs", "estimate", "incremental"}) == {
        "parts": 1,
        "records_in": 8,
        "valid": 2,
        "unchanged": 0,
        "dead_lettered": 6,
        "blank_lines": 1,
        "duplicate_ids": 0,
        "passages": None,  # the pipeline does not chunk
    }
    reasons = {item["line"]: item["reason"] for item in dead.items}
    assert reasons == {
        2: "malformed JSON: unexpected character, expected a JSON value at column 22",
        3: "not UTF-8: invalid continuation byte at byte 25",
        4: "missing id at $._id",
        5: "missing text at $.text",
        6: "text at $.text is a number, expected a string",
        7: "expected a JSON object, got an array",
    }
    assert all(item["stage"] == "parse" for item in dead.items)
    # And the model input keeps each record with its source line number and the fields ingest stamps
    uri = "s3://osb-in/input/msmarco/a.jsonl"

    def doc(text: str, doc_id: str) -> dict[str, str]:
        return stamped(config, text, job_id="msmarco-1", source=uri, doc_id=doc_id)

    assert read_parts(s3) == [
        [
            {"_id": "1", "text": "good one", "_osbatch": {"line": 1, "doc": doc("good one", "1")}},
            {
                "_id": 7,
                "text": "numeric ids are fine",
                "_osbatch": {"line": 9, "doc": doc("numeric ids are fine", "7")},
            },
        ]
    ]


def test_large_inputs_are_split_into_parts(config: PipelineConfig, s3: Any, jobs: JobTable) -> None:
    # Given 25 records and a backend that takes 10 per file
    body = b"".join(b'{"_id": "%d", "text": "t%d"}\n' % (n, n) for n in range(25))
    # When prepared
    result, _ = run_prepare(
        config, s3, jobs, body, InputLimits(max_records_per_file=10, max_bytes_per_file=10**6)
    )
    # Then there are three parts of 10, 10 and 5 records, in order
    parts = read_parts(s3)
    assert [len(part) for part in parts] == [10, 10, 5]
    assert result.prepared.parts == 3
    assert [record["_id"] for part in parts for record in part] == [str(n) for n in range(25)]


def test_a_record_over_the_per_line_limit_is_dead_lettered_alone(
    config: PipelineConfig, s3: Any, jobs: JobTable
) -> None:
    # Given a backend whose every job fails on one line over 1,000 bytes (SageMaker: MaxPayloadInMB),
    # and a file with one such record between ordinary ones
    limits = InputLimits(max_records_per_file=100, max_bytes_per_file=10**6, max_bytes_per_line=1000)
    body = b"".join(
        b'{"_id": "%d", "text": "%s"}\n' % (n, b"x" * 2000 if n == 2 else b"t%d" % n) for n in range(5)
    )
    # When prepared
    result, dead = run_prepare(config, s3, jobs, body, limits)
    # Then that record alone is dead-lettered, with what to change, and its neighbours are sent
    assert [record["_id"] for part in read_parts(s3) for record in part] == ["0", "1", "3", "4"]
    (letter,) = dead.items
    assert letter["line"] == 3 and letter["stage"] == "parse" and "MaxPayloadInMB" in letter["reason"]
    assert (result.prepared.records_in, result.prepared.valid, result.prepared.dead_lettered) == (5, 4, 1)


def test_an_empty_file_prepares_no_parts(config: PipelineConfig, s3: Any, jobs: JobTable) -> None:
    # Given an empty upload
    # When prepared
    result, dead = run_prepare(config, s3, jobs, b"")
    # Then nothing is sent to the model and nothing is lost
    assert (result.prepared.records_in, result.prepared.valid, result.prepared.parts) == (0, 0, 0)
    assert dead.items == []
    assert jobs.get("msmarco-1")["records_in"] == 0  # type: ignore[index]


def test_max_records_per_part_caps_each_input_file(s3: Any, jobs: JobTable) -> None:
    # Given a pipeline that wants at most 4 records per input file
    data = pipeline_dict()
    data["inference"]["max_records_per_part"] = 4
    body = b"".join(b'{"_id": "%d", "text": "t%d"}\n' % (n, n) for n in range(10))
    # When 10 records are prepared
    result, _ = run_prepare(parse_pipeline(data), s3, jobs, body)
    # Then they are split 4 + 4 + 2
    assert [len(part) for part in read_parts(s3)] == [4, 4, 2]
    assert result.prepared.parts == 3


def test_ids_used_twice_in_a_file_are_counted(config: PipelineConfig, s3: Any, jobs: JobTable) -> None:
    # Given a file where id "a" appears three times and 7 both as a number and as a string
    ids = ['"a"', '"b"', '"a"', "7", '"7"', '"a"', '"c"']
    body = b"".join(b'{"_id": %s, "text": "t"}\n' % value.encode() for value in ids)
    # When it is prepared
    result, _ = run_prepare(config, s3, jobs, body)
    # Then every record still goes to the model (the later line wins at indexing, as bulk by _id does),
    # and the three lines that reuse an earlier id are counted, in the state and the job table
    assert (result.prepared.valid, result.prepared.duplicate_ids) == (7, 3)
    assert jobs.get("msmarco-1")["duplicate_ids"] == 3  # type: ignore[index]


def test_a_conflicting_index_fails_before_the_input_is_read(
    config: PipelineConfig, s3: Any, jobs: JobTable
) -> None:
    # Given an index that exists with 768-dimensional vectors where the pipeline writes 384
    data = pipeline_dict()
    data["sink"]["mapping"] = {
        "mappings": {"properties": {"chunk_embedding": {"type": "knn_vector", "dimension": 384}}}
    }
    existing = {"properties": {"chunk_embedding": {"type": "knn_vector", "dimension": 768}}}
    cluster = FakeClient(FakeIndices(existing={"msmarco": existing}))
    # When the job is prepared
    # Then it fails with the conflict, and no model input was written
    with pytest.raises(IndexMappingConflict, match="dimension is 768, the pipeline needs 384"):
        run_prepare(parse_pipeline(data), s3, jobs, b'{"_id": "1", "text": "t"}\n', cluster=cluster)
    assert "Contents" not in s3.list_objects_v2(Bucket="osb-out", Prefix="jobs/msmarco-1/input/")


def test_a_joining_backend_gets_source_records_cut_like_its_input(s3: Any, jobs: JobTable) -> None:
    # Given a Bedrock pipeline (its output lines lack the record) and parts of two records
    from osbatch.backends.bedrock import BedrockBackend, record_id

    config = parse_pipeline(
        pipeline_dict(
            inference={
                "backend": "bedrock",
                "bedrock": {"model_id": "amazon.titan-embed-text-v2:0", "family": "titan-embed-text-v2"},
            }
        )
    )
    assert config.inference.bedrock is not None
    s3.put_object(Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=b"")
    state = JobState(
        job_id="msmarco-1",
        pipeline="msmarco",
        source=SourceObject(bucket="osb-in", key="input/msmarco/a.jsonl"),
    )
    jobs.create("msmarco-1", "msmarco", state.source)
    backend = BedrockBackend(config.inference.bedrock, None, s3, {})  # type: ignore[arg-type]
    backend.limits = InputLimits(2, 10_000)
    body = b"".join(json.dumps({"_id": f"d{n}", "text": f"t{n}"}).encode() + b"\n" for n in range(3))
    s3.put_object(Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=body)
    uri = "s3://osb-in/input/msmarco/a.jsonl"
    # When Prepare runs
    prepare_job(
        state,
        pipeline=DeployedPipeline(config, backend, FakeClient()),
        store=job_store(jobs, s3),
        dead_letters=ListDeadLetters(),
    )

    # Then input and source parts have the same names and records, the input in Bedrock's shape
    def lines(key: str) -> list[Any]:
        return [
            json.loads(line) for line in s3.get_object(Bucket="osb-out", Key=key)["Body"].read().splitlines()
        ]

    for part, numbers in (("part-00000.jsonl", [1, 2]), ("part-00001.jsonl", [3])):
        inputs = lines(f"jobs/msmarco-1/input/job-00000/{part}")
        sources = lines(f"jobs/msmarco-1/source/{part}")
        assert [line["recordId"] for line in inputs] == [record_id(n) for n in numbers]
        assert [line["modelInput"]["inputText"] for line in inputs] == [f"t{n - 1}" for n in numbers]
        assert sources == [
            {
                "_id": f"d{n - 1}",
                "text": f"t{n - 1}",
                "_osbatch": {
                    "line": n,
                    "doc": stamped(config, f"t{n - 1}", job_id="msmarco-1", source=uri, doc_id=f"d{n - 1}"),
                },
            }
            for n in numbers
        ]
