"""`_batch_ingestion` bodies as OpenSearch documents them, run by the ingest engine on local files.

OpenSearch, "Asynchronous batch ingestion":
https://docs.opensearch.org/latest/ml-commons-plugin/api/async-batch-ingest/
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from cli.batch_ingest import BatchIngestError, load_request
from cli.batch_ingest import run as run_command
from osbatch.batch_ingestion.local_files import LocalFiles
from osbatch.batch_ingestion.request import BatchIngestRequest, BatchRequestError, parse_batch_request
from osbatch.batch_ingestion.run import BatchReport, DeadLetterStore, InputFile, run_batch_ingest
from osbatch.config import BulkConfig
from tests.helpers import OPENAI_BODY, SAGEMAKER_BODY
from tests.unit.fake_opensearch import Cluster, FakeIndices
from tests.unit.helpers import openai_files


def run(
    request: BatchIngestRequest,
    paths: list[Path],
    tmp_path: Path,
    cluster: Cluster,
    order: tuple[int, ...] | None = None,
) -> BatchReport:
    files = [InputFile("", str(p), p.stat().st_size, str(p)) for p in paths]
    store = DeadLetterStore(LocalFiles(), str(tmp_path / "dlq"), "dead-letter/run-1/")
    return run_batch_ingest(
        request,
        files,
        run_id="run-1",
        objects=LocalFiles(),
        opensearch=cluster,
        dead_letters=store,
        bulk=BulkConfig(max_bytes=1024, concurrency=2),
        chunk_bytes=200,
        order=order,
    )


def dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    paths = sorted((tmp_path / "dlq").rglob("*.jsonl"))
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


def test_the_three_file_openai_example_joins_into_the_same_documents_in_any_order(tmp_path: Path) -> None:
    # Given the documented three-file request, without its credential
    request = BatchIngestRequest.model_validate(OPENAI_BODY)
    assert request.joins
    results = []

    # When its files are read in every order, their lines in two different orders, in 200-byte chunks
    orders = itertools.product(itertools.permutations(range(3)), ([1, 2, 3], [3, 1, 2]))
    for number, (files, lines) in enumerate(orders):
        work = tmp_path / str(number)
        work.mkdir()
        cluster = Cluster()
        report = run(request, openai_files(work, lines), work, cluster, order=files)
        assert (report.records_in, report.indexed, report.dead_lettered) == (9, 9, 0)
        results.append(cluster.docs)

    # Then every order gives the same three documents, each with all the mapped and ingested fields
    assert all(docs == results[0] for docs in results)
    assert sorted(results[0]) == ["request-1", "request-2", "request-3"]
    assert results[0]["request-2"] == {
        "question": "question 2",
        "answer": "answer 2",
        "question_embedding": [2.0, 0.5],
        "answer_embedding": [2.1, 0.5],
        "custom_field1": "f1-2",
        "custom_field2": 2,
    }


def test_the_single_file_sagemaker_example_maps_as_documented(tmp_path: Path) -> None:
    # Given the documented SageMaker output lines, one of which lacks a mapped path
    path = tmp_path / "sagemaker_batch.json.out"
    rows = [
        {
            "SageMakerOutput": [[0.1, 0.2], [0.3, 0.4]],
            "content": ["this is chapter 1", "harry potter"],
            "id": 1,
        },
        {"SageMakerOutput": [[0.5, 0.6]], "content": ["this is chapter 2", "draco malfoy"], "id": 2},
        {"SageMakerOutput": [[0.7, 0.8], [0.9, 1.0]], "content": ["this is chapter 3", "hermione"], "id": 3},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    cluster = Cluster()

    # When the documented request runs
    report = run(BatchIngestRequest.model_validate(SAGEMAKER_BODY), [path], tmp_path, cluster)

    # Then two documents are indexed by their id, with `id` copied by ingest_fields
    assert cluster.docs["1"] == {
        "chapter": "this is chapter 1",
        "title": "harry potter",
        "chapter_embedding": [0.1, 0.2],
        "title_embedding": [0.3, 0.4],
        "id": 1,
    }
    assert sorted(cluster.docs) == ["1", "3"]
    # And the line without $.SageMakerOutput[1] is one dead letter saying so, not a failed task
    assert (report.records_in, report.indexed, report.dead_lettered) == (3, 2, 1)
    (dead,) = dead_letters(tmp_path)
    assert dead["reason"] == "field_map.title_embedding: $.SageMakerOutput[1] not found in record"
    assert dead["source"] == str(path) and dead["record"]["id"] == 2


def test_lines_without_an_id_mapping_get_the_same_id_on_every_run(tmp_path: Path) -> None:
    # Given a request without `_id`
    body = {**SAGEMAKER_BODY, "field_map": {"chapter": "$.content[0]"}, "ingest_fields": []}
    path = tmp_path / "out.jsonl"
    path.write_text('{"content": ["a"]}\n{"content": ["b"]}\n')
    # When it runs twice into one index
    cluster = Cluster()
    run(BatchIngestRequest.model_validate(body), [path], tmp_path, cluster)
    first = dict(cluster.docs)
    run(BatchIngestRequest.model_validate(body), [path], tmp_path, cluster)
    # Then the second run overwrote the same two documents instead of adding two more
    assert cluster.docs == first and len(first) == 2


def test_a_credential_in_the_body_is_refused_with_where_credentials_come_from() -> None:
    # Given the documented request with its credential block
    body = {**SAGEMAKER_BODY, "credential": {"region": "us-east-1", "access_key": "AKIA..."}}
    # When it is parsed, then it is refused, and the message says what to do instead
    with pytest.raises(BatchRequestError, match="standard credential chain") as error:
        parse_batch_request(body)
    assert "Secrets Manager" in str(error.value) and "AKIA" not in str(error.value)
    # And it shows the same body without the block, ready to copy
    shown = str(error.value).split("the same request without it:\n", 1)[1]
    assert json.loads(shown) == SAGEMAKER_BODY


def test_a_path_into_a_file_the_request_does_not_list_is_refused() -> None:
    body = {**OPENAI_BODY, "ingest_fields": ["source[3].$.x"]}
    with pytest.raises(BatchRequestError, match=r"reads source\[3\], but data_source has 3 file"):
        parse_batch_request(body)


def test_several_files_without_an_id_cannot_be_joined() -> None:
    body = {**OPENAI_BODY, "field_map": {"question": "source[1].$.body.input[0]"}}
    with pytest.raises(BatchRequestError, match="_id is needed to join several files"):
        parse_batch_request(body)


def test_errors_name_the_field_without_quoting_the_body() -> None:
    body = {**SAGEMAKER_BODY, "data_source": {"type": "ftp", "source": ["ftp://secret-host/x"]}}
    with pytest.raises(BatchRequestError, match=r"data_source\.type") as error:
        parse_batch_request(body)
    assert "secret-host" not in str(error.value)


class IndexedCluster(Cluster):
    def __init__(self, *indexes: str) -> None:
        super().__init__()
        self.indices = FakeIndices(existing={name: {} for name in indexes})


def test_the_command_prints_progress_and_where_the_dead_letters_are(tmp_path: Path) -> None:
    # Given a `file` request of two lines, one without its vector, into an existing index
    data = tmp_path / "out.jsonl"
    data.write_text('{"id": 1, "v": [1, 2]}\n{"id": 2}\n')
    body = {
        "index_name": "docs",
        "field_map": {"vector": "$.v", "_id": "$.id"},
        "data_source": {"type": "file", "source": [str(data)]},
    }
    (tmp_path / "request.json").write_text(json.dumps(body))
    said: list[str] = []

    # When the command runs it
    request = load_request(tmp_path / "request.json")
    report = run_command(
        request, opensearch=IndexedCluster("docs"), s3=None, dead_letter_dir=tmp_path / "dl",
        bulk=BulkConfig(), say=said.append,
    )  # fmt: skip

    # Then it said what it was doing, chunk by chunk, and ended with the counts and the dead letters' place
    assert said[0].endswith("1 file(s), 33 bytes, into index docs")
    assert said[1].startswith("  chunk 0: 2 records, 1 indexed, 1 dead-lettered")
    assert said[-1] == (
        f"done: 2 records in, 1 indexed, 1 dead-lettered; dead letters in {tmp_path / 'dl'}/{report.run_id}/"
    )
    assert len(dead_letters_under(tmp_path / "dl")) == 1


def test_the_command_refuses_an_index_that_does_not_exist(tmp_path: Path) -> None:
    request = BatchIngestRequest.model_validate(
        {"index_name": "nope", "field_map": {"x": "$.x"}, "data_source": {"type": "file", "source": ["a"]}}
    )
    with pytest.raises(BatchIngestError, match="index 'nope' does not exist; create it"):
        run_command(
            request, opensearch=IndexedCluster(), s3=None, dead_letter_dir=tmp_path, bulk=BulkConfig()
        )


def dead_letters_under(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in root.rglob("*.jsonl") for line in path.read_text().splitlines()]
