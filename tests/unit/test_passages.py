"""Chunked records through Prepare, the service and the join: passages in, a record with every vector out."""

from __future__ import annotations

import json
import random
from typing import Any

from osbatch.backends.base import InputLimits, OutputObject, PassageInput
from osbatch.backends.bedrock import BedrockBackend, passage_of, passage_record_id
from osbatch.backends.openai import OpenAIBackend
from osbatch.backends.sagemaker import SageMakerBackend
from osbatch.config import parse_pipeline
from osbatch.dal import JobTable
from osbatch.handlers.wiring import chunker_for
from osbatch.ingest.chunk import IngestTarget
from osbatch.models import JobState, SourceObject
from osbatch.steps.prepare import prepare_job
from osbatch.steps.support.join import join_outputs
from osbatch.steps.support.passages import passage_joiner
from osbatch.steps.support.ports import DeployedPipeline
from tests.unit.fake_opensearch import FakeClient
from tests.unit.helpers import CHUNKING_BY_BYTES, chunking_config, chunking_pipeline_dict, job_store

LONG = "alpha beta gamma delta epsilon zeta eta theta iota kappa"  # 57 bytes: 3 passages


def prepare(
    s3: Any, jobs: JobTable, lines: list[dict[str, Any] | str], limits: InputLimits | None = None
) -> tuple[JobState, list[dict[str, Any]]]:
    body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode() + b"\n"
    s3.put_object(Bucket="osb-in", Key="input/msmarco/a.jsonl", Body=body)
    state = JobState(
        job_id="msmarco-1",
        pipeline="msmarco",
        source=SourceObject(bucket="osb-in", key="input/msmarco/a.jsonl"),
    )
    jobs.create("msmarco-1", "msmarco", state.source)
    pipeline = chunking_config()
    assert pipeline.inference.sagemaker is not None
    backend = SageMakerBackend(pipeline.inference.sagemaker, None, s3, {})  # type: ignore[arg-type]
    if limits is not None:
        backend.limits = limits
    letters: list[dict[str, Any]] = []

    class Letters:
        def add(self, **letter: Any) -> None:
            letters.append(letter)

        def close(self) -> int:
            return len(letters)

    deployed = DeployedPipeline(pipeline, backend, FakeClient(), chunker_for(pipeline))
    return prepare_job(state, pipeline=deployed, store=job_store(jobs, s3), dead_letters=Letters()), letters


def objects(s3: Any, prefix: str) -> list[list[dict[str, Any]]]:
    keys = sorted(
        item["Key"] for item in s3.list_objects_v2(Bucket="osb-out", Prefix=prefix).get("Contents", [])
    )
    return [
        [json.loads(line) for line in s3.get_object(Bucket="osb-out", Key=key)["Body"].read().splitlines()]
        for key in keys
    ]


def test_prepare_sends_each_passage_and_keeps_the_record(s3: Any, jobs: JobTable) -> None:
    # Given a long record and a short one
    result, letters = prepare(
        s3, jobs, [{"_id": "a", "title": "A", "text": LONG}, {"_id": "b", "text": "short"}]
    )

    # Then each passage is one input line holding its text where the InputFilter reads it, with its place
    (lines,) = objects(s3, "jobs/msmarco-1/input/")
    assert [(line["_osbatch"]["line"], line["_osbatch"]["passage"]) for line in lines] == [
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
    ]
    assert "".join(line["text"] for line in lines[:3]) == LONG  # no overlap: the passages tile the text
    assert all(len(line["text"].encode()) <= 20 for line in lines)
    # And the source records are kept once each, with their passages' offsets
    (sources,) = objects(s3, "jobs/msmarco-1/source/")
    assert [source["_osbatch"]["passages"] for source in sources] == [3, 1]
    assert sources[0]["_osbatch"]["spans"] == [
        [line["_osbatch"]["start"], line["_osbatch"]["end"]] for line in lines[:3]
    ]
    # And the counts: two records, four passages
    assert result.prepared is not None
    assert (result.prepared.valid, result.prepared.passages, letters) == (2, 4, [])
    assert [job.records for job in result.prepared.jobs] == [2]


def test_bad_text_is_dead_lettered_at_stage_chunk_with_what_to_change(s3: Any, jobs: JobTable) -> None:
    # Given blank text, and a text needing more than max_chunk_limit (5) passages
    result, letters = prepare(s3, jobs, [{"_id": "a", "text": "  \n "}, {"_id": "b", "text": "word " * 40}])

    # Then neither reaches the model, and each dead letter says why
    assert result.prepared is not None and result.prepared.valid == 0
    assert [(letter["line"], letter["stage"]) for letter in letters] == [(1, "chunk"), (2, "chunk")]
    assert "empty or only whitespace" in letters[0]["reason"]
    assert "max_chunk_limit of 5" in letters[1]["reason"]
    assert result.prepared.records_in == 2 == result.prepared.dead_lettered


def test_a_record_with_more_passages_than_one_input_file_holds_is_dead_lettered(
    s3: Any, jobs: JobTable
) -> None:
    # Given a backend taking 2 inputs per file, and a record of 3 passages beside one of 1
    result, letters = prepare(
        s3, jobs, [{"_id": "a", "text": LONG}, {"_id": "b", "text": "short"}], limits=InputLimits(2, 10**6)
    )

    # Then the long record is dead-lettered at stage chunk, saying what to change; it is never sent in part
    assert [(letter["line"], letter["stage"]) for letter in letters] == [(1, "chunk")]
    assert "the text gives 3 passages, over the 2 inputs" in letters[0]["reason"]
    assert result.prepared is not None and (result.prepared.valid, result.prepared.passages) == (1, 1)


def sagemaker_output(s3: Any, lines: list[dict[str, Any]], drop: int | None = None) -> OutputObject:
    """What Batch Transform writes with JoinSource=Input, reordered: each line plus its vector."""
    answered = [
        {
            **line,
            "SageMakerOutput": [float(line["_osbatch"]["line"]), float(line["_osbatch"]["passage"]), 1.0],
        }
        for number, line in enumerate(lines)
        if number != drop
    ]
    random.Random(7).shuffle(answered)
    body = b"".join(json.dumps(line).encode() + b"\n" for line in answered)
    key = "jobs/msmarco-1/output/job-00000/part-00000.jsonl.out"
    s3.put_object(Bucket="osb-out", Key=key, Body=body)
    return OutputObject("osb-out", key, len(body))


def join(s3: Any, output: OutputObject) -> tuple[list[dict[str, Any]], int, int]:
    pipeline = chunking_config()
    assert pipeline.inference.sagemaker is not None
    joiner = passage_joiner(pipeline)
    letters: list[Any] = []

    class Letters:
        def add(self, **letter: Any) -> None:
            letters.append(letter)

        def close(self) -> int:
            return len(letters)

    joined = join_outputs(
        SageMakerBackend(pipeline.inference.sagemaker, None, s3, {}),  # type: ignore[arg-type]
        s3,
        [output],
        source_bucket="osb-out",
        source_prefix="jobs/msmarco-1/source/",
        joined_prefix="jobs/msmarco-1/joined/",
        dead_letters=lambda _: Letters(),  # type: ignore[arg-type,return-value]
        join_part=joiner,
    )
    (records,) = objects(s3, "jobs/msmarco-1/joined/")
    assert joiner is not None
    return records, joiner.embedded, joined.missing


def test_passages_come_back_together_whatever_the_order_into_one_nested_document(
    s3: Any, jobs: JobTable
) -> None:
    # Given a prepared long record and short one, and the service's output in another order
    prepare(s3, jobs, [{"_id": "a", "title": "A", "text": LONG}, {"_id": "b", "title": "B", "text": "short"}])
    (lines,) = objects(s3, "jobs/msmarco-1/input/")

    # When the output is joined and mapped
    records, embedded, missing = join(s3, sagemaker_output(s3, lines))
    target = IngestTarget.of_pipeline(chunking_config())
    docs = []
    for record in records:
        doc = target.mapper.map(record)
        assert target.passages is not None
        target.passages.fill(record, doc.body)
        docs.append((doc.doc_id, doc.body))

    # Then each record is one document, its passages in order with their text, offsets and own vector
    (first_id, first), (second_id, second) = docs
    assert (first_id, second_id) == ("a", "b")
    assert first["title"] == "A"
    assert [p["embedding"] for p in first["passages"]] == [[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 2.0, 1.0]]
    assert all(LONG[p["start"] : p["end"]] == p["text"] for p in first["passages"])
    assert second["passages"] == [{"text": "short", "start": 0, "end": 5, "embedding": [2.0, 0.0, 1.0]}]
    assert (embedded, missing) == (4, 0)


def test_a_record_missing_a_passage_is_not_indexed_half_embedded(s3: Any, jobs: JobTable) -> None:
    # Given the output lacks the second passage of the long record
    prepare(s3, jobs, [{"_id": "a", "text": LONG}, {"_id": "b", "text": "short"}])
    (lines,) = objects(s3, "jobs/msmarco-1/input/")

    # When joined
    records, embedded, _ = join(s3, sagemaker_output(s3, lines, drop=1))

    # Then the long record carries an error naming the missing passage (ingest dead-letters it);
    # the other is whole
    by_line = {record["_osbatch"]["line"]: record for record in records}
    error = by_line[1]["_osbatch"]["error"]
    assert (
        error["code"] == "missing_passages" and "1 of the record's 3 passages (passage 1)" in error["message"]
    )
    assert "passages" in by_line[2]["_osbatch"] and embedded == 1


def test_bedrock_passage_ids_are_eleven_alphanumerics_and_round_trip() -> None:
    record_id = passage_record_id(123_456_789, 1_999)
    assert len(record_id) == 11 and record_id.isalnum()
    assert passage_of(record_id) == (123_456_789, 1_999)


def test_an_openai_request_carries_a_records_passages_and_its_answer_maps_back_by_index() -> None:
    # Given an embeddings pipeline's backend and three passages of line 4
    data = chunking_pipeline_dict(CHUNKING_BY_BYTES)
    data["inference"] = {
        "backend": "openai",
        "openai": {
            "model": "text-embedding-3-small",
            "api_key_secret": "arn:aws:secretsmanager:us-east-1:111122223333:secret:k",
        },
    }
    pipeline = parse_pipeline(data, "test")
    assert pipeline.inference.openai is not None
    backend = OpenAIBackend(pipeline.inference.openai, None, None, retry_window_seconds=60, now=lambda: 0.0)  # type: ignore[arg-type]
    passages = [PassageInput(number, f"p{number}", number, number + 1) for number in range(3)]

    # When its input lines are made
    ((line, inputs),) = backend.passage_lines(4, passages, lambda text: {"text": text})

    # Then one request holds the list of passages, and its response's data[i] answers passage i
    assert (line["custom_id"], line["body"]["input"], inputs) == ("line-4-0", ["p0", "p1", "p2"], 3)
    answer = {
        "custom_id": "line-4-0",
        "response": {
            "status_code": 200,
            "body": {
                "data": [
                    {"index": 2, "embedding": [2.0]},
                    {"index": 0, "embedding": [0.0]},
                    {"index": 1, "embedding": [1.0]},
                ]
            },
        },
    }
    parsed = backend.parse_output(answer)
    assert (parsed.line, parsed.passage) == (4, 0)
    assert backend.embeddings(parsed.result) == [[0.0], [1.0], [2.0]]


def test_bedrock_sends_one_titan_request_per_passage() -> None:
    data = chunking_pipeline_dict(CHUNKING_BY_BYTES)
    data["inference"] = {
        "backend": "bedrock",
        "bedrock": {"model_id": "amazon.titan-embed-text-v2:0", "family": "titan-embed-text-v2"},
    }
    pipeline = parse_pipeline(data, "test")
    assert pipeline.inference.bedrock is not None
    backend = BedrockBackend(pipeline.inference.bedrock, None, None, {})  # type: ignore[arg-type]
    lines = backend.passage_lines(
        9, [PassageInput(0, "one", 0, 3), PassageInput(1, "two", 3, 6)], lambda t: {"text": t}
    )
    assert [line["modelInput"]["inputText"] for line, _ in lines] == ["one", "two"]
    parsed = backend.parse_output({"recordId": lines[1][0]["recordId"], "modelOutput": {"embedding": [0.5]}})
    assert (parsed.line, parsed.passage, backend.embeddings(parsed.result)) == (9, 1, [[0.5]])
