"""`osbatch batch-ingest` with the documented request bodies, on the real local node and the emulator's S3.

The bodies are those of OpenSearch's "Asynchronous batch ingestion" (the guide and its API page):
https://docs.opensearch.org/latest/ml-commons-plugin/remote-models/async-batch-ingestion/
https://docs.opensearch.org/latest/ml-commons-plugin/api/async-batch-ingest/

The bodies are the documented ones without their `credential` block (refused by design). The index is the
documented one, its nmslib fields moved to lucene by localize_mapping (the local node has no nmslib).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from cli.batch_ingest import run
from local.aws import session
from local.opensearch import localize_mapping
from local.runtime import AWS_URL, LocalRuntime
from osbatch.batch_ingestion.request import parse_batch_request
from osbatch.config import BulkConfig
from tests.helpers import OPENAI_BODY, SAGEMAKER_BODY
from tests.integration.helpers import DIM, serve_openai_example, vector

pytestmark = pytest.mark.integration


def knn(dimension: int = DIM) -> dict[str, Any]:
    method = {"engine": "nmslib", "space_type": "cosinesimil", "name": "hnsw"}
    return {"type": "knn_vector", "dimension": dimension, "method": method}


@pytest.fixture
def client(runtime: LocalRuntime) -> OpenSearch:
    return OpenSearch(hosts=[runtime.opensearch.url], timeout=60)


@pytest.fixture
def index(client: OpenSearch) -> Iterator[str]:
    name = f"batch-ingest-{uuid.uuid4().hex[:8]}"
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def create(client: OpenSearch, index: str, properties: dict[str, Any]) -> None:
    body, _ = localize_mapping({"settings": {"index.knn": True}, "mappings": {"properties": properties}})
    client.indices.create(index=index, body=body)


def test_the_sagemaker_example_from_s3_indexes_good_lines_and_dead_letters_bad_ones(
    client: OpenSearch, index: str, tmp_path: Path
) -> None:
    # Given the documented index, and SageMaker output in S3 with a wrong dimension and a string vector
    create(
        client,
        index,
        {"id": {"type": "text"}, "chapter_embedding": knn(), "chapter": {"type": "text"},
         "title_embedding": knn(), "title": {"type": "text"}},
    )  # fmt: skip
    rows = [
        {
            "SageMakerOutput": [vector(0.1), vector(0.2)],
            "content": ["this is chapter 1", "harry potter"],
            "id": 1,
        },
        {"SageMakerOutput": [vector(0.3), [0.1, 0.2]], "content": ["chapter 2", "draco malfoy"], "id": 2},
        {"SageMakerOutput": [vector(0.4), "not a vector"], "content": ["chapter 3", "hermione"], "id": 3},
        {"SageMakerOutput": [vector(0.5), vector(0.6)], "content": ["chapter 4", "ron"], "id": 4},
    ]
    s3 = session().client("s3", endpoint_url=AWS_URL)
    bucket = f"offlinebatch-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=bucket, Key="output/sagemaker_batch.json.out", Body="".join(json.dumps(r) + "\n" for r in rows)
    )
    body = json.loads(
        json.dumps(SAGEMAKER_BODY).replace("offlinebatch", bucket).replace("my-nlp-index", index)
    )

    # When the request runs
    said: list[str] = []
    report = run(
        parse_batch_request(body), opensearch=client, s3=s3, dead_letter_dir=tmp_path,
        bulk=BulkConfig(), say=said.append,
    )  # fmt: skip

    # Then the two good lines are documents, and each bad one is one dead letter with OpenSearch's reason
    client.indices.refresh(index=index)
    assert (report.records_in, report.indexed, report.dead_lettered) == (4, 2, 2)
    assert sorted(hit["_id"] for hit in client.search(index=index)["hits"]["hits"]) == ["1", "4"]
    dead = [
        json.loads(line)
        for path in sorted(tmp_path.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    reasons = {d["record"]["id"]: d["reason"] for d in dead}
    assert sorted(reasons) == [2, 3]
    assert "dimension" in reasons[2].lower()
    assert reasons[3].startswith("mapper_parsing_exception")
    assert said[-1].endswith(f"dead letters in {tmp_path}/{report.run_id}/")


def test_the_three_file_openai_example_joins_on_custom_id(
    client: OpenSearch, index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the documented OpenAI batch output, its input, and a third file, served by a Files API endpoint
    create(client, index, {"question_embedding": knn(), "answer_embedding": knn()})
    server, files = serve_openai_example(monkeypatch, tag="two")
    body = {**OPENAI_BODY, "index_name": index, "data_source": files}

    # When the request runs
    try:
        report = run(parse_batch_request(body), opensearch=client, s3=None, dead_letter_dir=tmp_path,
                     bulk=BulkConfig(), say=lambda line: None)  # fmt: skip
    finally:
        server.shutdown()

    # Then three documents hold the seven fields of their three lines
    client.indices.refresh(index=index)
    assert (report.records_in, report.indexed, report.dead_lettered) == (9, 9, 0)
    doc = client.get(index=index, id="request-2")["_source"]
    assert (doc["question"], doc["answer"], doc["custom_field1"], doc["custom_field2"]) == (
        "question 2", "answer 2", "one-2", "two-2",
    )  # fmt: skip
    assert doc["question_embedding"][0] == pytest.approx(2.0) and doc["answer_embedding"][0] == pytest.approx(
        2.1
    )
    assert client.count(index=index)["count"] == 3
