"""Long documents on the real local runtime, on every backend: records chunked into passages, each passage
embedded by the service, and one document per record indexed with its passages nested (text, offsets,
vector), exactly the passages the chunker cuts; and, in the passage layout, one document per passage."""

from __future__ import annotations

import json
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from cli.search import hits_of, run_search
from local.emulators.node_facing import node_facing_host
from local.model.packaged import sentence_transformers_folder
from local.runtime import LocalRuntime
from osbatch.chunking import Passage
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from osbatch.handlers.wiring import chunker_for
from osbatch.search.client import opensearch_client
from tests.integration.helpers import DIM, PIPELINES, dead_letters, report, upload, wait_for_end

pytestmark = [pytest.mark.integration]
BACKENDS = ("e2e-long", "e2e-long-bedrock", "e2e-long-openai", "e2e-long-ml-commons")
PASSAGE_LAYOUT = "e2e-long-passage"
FRESH = (*BACKENDS, PASSAGE_LAYOUT)
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "python-modules" / "modules.jsonl"
# Eight of the sample's shorter modules (72 KB): enough passages for Bedrock's 100 records per job.
MODULES = ("base64", "cmd", "fileinput", "struct", "mimetypes", "operator", "dis", "secrets")
TOKENIZER = sentence_transformers_folder() / "tokenizer.json"
NO_NODE_FACING_HOST = "no address ML Commons' batch calls can reach (local/emulators/node_facing.py)"


@pytest.fixture(scope="module")
def modules() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    return [row for row in rows if row["_id"] in MODULES]


def expected_passages(config: PipelineConfig, text: str) -> list[Passage]:
    chunker = chunker_for(config, TOKENIZER)
    assert chunker is not None
    passages = chunker.chunk(text)
    assert isinstance(passages, list)
    return passages


def run(stack: Any, config: PipelineConfig, jobs: JobTable, records: list[dict[str, Any]]) -> dict[str, Any]:
    body = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    job_id = upload(stack, config, f"long-{time.time_ns()}.jsonl", body)
    return wait_for_end(jobs, job_id, timeout=600)


@pytest.mark.parametrize("pipeline", BACKENDS)
def test_long_documents_are_indexed_with_every_passage_nested(
    pipeline: str,
    stack: Any,
    configs: dict[str, PipelineConfig],
    jobs: JobTable,
    runtime: LocalRuntime,
    modules: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = configs[pipeline]
    if config.inference.backend.value == "ml-commons":
        if node_facing_host() is None:
            pytest.skip(NO_NODE_FACING_HOST)
        assert main(["--pipelines", PIPELINES, "setup", "--pipeline", pipeline]) == 0  # its batch model
        capsys.readouterr()
    # Given eight long modules, and the passages the pipeline's chunker cuts them into
    expected = {module["_id"]: expected_passages(config, module["text"]) for module in modules}
    sent = sum(len(passages) for passages in expected.values())

    # When they are uploaded
    job = run(stack, config, jobs, modules)

    # Then every record is indexed, and every passage was sent and embedded
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"]) == ("COMPLETED", 8, 8, 0)
    assert report(stack, job["job_id"])["passages"] == {"sent": sent, "embedded": sent, "dead_lettered": 0}
    assert (job["passages_sent"], job["passages_embedded"]) == (sent, sent)
    # And each document holds its record's passages, in order, with their text, offsets and own vector
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=config.sink.index)
    dimension = config.sink.mapping["mappings"]["properties"]["passages"]["properties"]["embedding"][
        "dimension"
    ]
    for module in modules:
        source = client.get(index=config.sink.index, id=module["_id"])["_source"]
        passages = source["passages"]
        assert source["title"] == module["title"]
        assert [(p["start"], p["end"]) for p in passages] == [
            (p.start, p.end) for p in expected[module["_id"]]
        ]
        assert all(module["text"][p["start"] : p["end"]] == p["text"] for p in passages)
        assert {len(p["embedding"]) for p in passages} == {dimension}
    # And a nested k-NN query with a passage deep in a document finds that document and that passage
    deep = client.get(index=config.sink.index, id="struct")["_source"]["passages"][-1]
    assert deep["start"] > 2000
    query = {
        "size": 1,
        "query": {
            "nested": {
                "path": "passages",
                "query": {"knn": {"passages.embedding": {"vector": deep["embedding"], "k": 5}}},
                "inner_hits": {"size": 1, "_source": ["passages.start", "passages.end"]},
            }
        },
    }
    (hit,) = client.search(index=config.sink.index, body=query)["hits"]["hits"]
    (inner,) = hit["inner_hits"]["passages"]["hits"]["hits"]
    assert (hit["_id"], inner["_source"]["start"]) == ("struct", deep["start"])


def test_bad_text_is_dead_lettered_with_what_to_change_and_nothing_is_lost(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable, runtime: LocalRuntime
) -> None:
    config = configs["e2e-long"]
    # Given empty, whitespace-only and delimiter-only texts, a 100,000-character "word", a 50 MB line
    # (more passages than max_chunk_limit allows) and one good record
    texts = {
        "empty": "",
        "blank": "  \t \n ",
        "delimiters": "\n\n\n\n\n\n",
        "word": "x" * 100_000,
        "huge": "word " * 10_000_000,
        "good": "A short record about base64 encoding.",
    }
    records = [{"_id": name, "title": name, "text": text} for name, text in texts.items()]

    # When the file is uploaded
    job = run(stack, config, jobs, records)

    # Then the long word and the good record are indexed, the others are dead-lettered at stage chunk
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"]) == ("COMPLETED", 6, 2, 4)
    letters = {letter["record"]["_id"]: letter for letter in dead_letters(stack, job["job_id"])}
    assert {name: letter["stage"] for name, letter in letters.items()} == dict.fromkeys(
        ("empty", "blank", "delimiters", "huge"), "chunk"
    )
    assert "empty or only whitespace" in letters["delimiters"]["reason"]
    assert "max_chunk_limit of 2000" in letters["huge"]["reason"]
    # And the long word is all there: its passages cover every character
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=config.sink.index)
    passages = client.get(index=config.sink.index, id="word")["_source"]["passages"]
    assert passages[0]["start"] == 0 and passages[-1]["end"] == 100_000
    assert all(a["end"] >= b["start"] for a, b in pairwise(passages))


def test_an_existing_index_whose_passages_are_not_nested_fails_the_job_before_inference(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable, runtime: LocalRuntime
) -> None:
    # Given the pipeline's index made by hand with `passages` as a plain object
    config = configs["e2e-long"]
    client = opensearch_client(runtime.opensearch.url)
    client.indices.delete(index=config.sink.index, ignore_unavailable=True)
    properties = config.sink.mapping["mappings"]["properties"]
    plain = {**properties, "passages": {"properties": properties["passages"]["properties"]}}
    client.indices.create(
        index=config.sink.index, body={"settings": {"index.knn": True}, "mappings": {"properties": plain}}
    )
    try:
        # When a file is uploaded
        job = run(stack, config, jobs, [{"_id": "a", "text": "some text"}])
        # Then Prepare fails the job naming the field, and nothing was sent to a model
        assert job["state"] == "FAILED"
        assert "passages.type is 'object', the pipeline needs 'nested'" in job["reason"]
    finally:
        client.indices.delete(index=config.sink.index, ignore_unavailable=True)


def test_the_passage_layout_indexes_one_document_per_passage_and_search_returns_each_record_once(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable, runtime: LocalRuntime
) -> None:
    config = configs[PASSAGE_LAYOUT]
    # Given three long modules and a blank record, and the passages the pipeline's chunker cuts them into
    modules = [
        json.loads(line)
        for line in SAMPLE.read_text().splitlines()
        if json.loads(line)["_id"] in ("base64", "secrets", "struct")
    ]
    records = [*modules, {"_id": "blank", "title": "blank", "text": " \n "}]
    expected = {module["_id"]: expected_passages(config, module["text"]) for module in modules}
    sent = sum(len(passages) for passages in expected.values())

    # When the file is uploaded
    job = run(stack, config, jobs, records)

    # Then the modules are indexed and the blank record dead-lettered: records_in = indexed + dead_lettered
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"]) == ("COMPLETED", 4, 3, 1)
    assert report(stack, job["job_id"])["passages"] == {"sent": sent, "embedded": sent, "dead_lettered": 0}
    assert (job["passages_sent"], job["passages_embedded"]) == (sent, sent)
    # And the index holds one document per passage, `<record id>#<n>`, with parent_id, text and offsets
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=config.sink.index)
    assert client.count(index=config.sink.index)["count"] == sent
    for module in modules:
        for number, passage in enumerate(expected[module["_id"]]):
            source = client.get(index=config.sink.index, id=f"{module['_id']}#{number}")["_source"]
            assert (source["parent_id"], source["title"]) == (module["_id"], module["title"])
            assert (source["start"], source["end"], source["text"]) == (
                passage.start,
                passage.end,
                passage.text,
            )
            assert len(source["embedding"]) == DIM
    # And a knn search with a passage deep in struct returns struct first with that passage as its best, and
    # every record once: the search collapses the passages on parent_id
    deep = len(expected["struct"]) - 1
    vector = client.get(index=config.sink.index, id=f"struct#{deep}")["_source"]["embedding"]
    response = run_search(client, config, "a passage deep in struct", k=3, query_vector=lambda _text: vector)
    hits = hits_of(response, config)
    assert sorted(hit.doc_id for hit in hits) == ["base64", "secrets", "struct"]
    assert hits[0].doc_id == "struct"
    assert (hits[0].passages[0].start, hits[0].passages[0].end) == (
        expected["struct"][deep].start,
        expected["struct"][deep].end,
    )
