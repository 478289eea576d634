"""Chunked records into the index: both layouts, a record of several documents counted once, replay, and
the report's passage counts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from osbatch.config import ConfigError, parse_pipeline
from osbatch.ingest.bulk import BulkWriter
from osbatch.ingest.chunk import IngestTarget
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.replay import replay
from osbatch.models import IngestPlan, JobState, Prepared, SourceObject
from osbatch.models.ingest import MappedDoc, RecordRef
from osbatch.steps.support.report import passage_counts
from tests.unit.helpers import CHUNKING_BY_BYTES, chunking_config, chunking_pipeline_dict


def test_the_report_counts_passages_so_that_sent_is_embedded_plus_dead_lettered() -> None:
    # Given a chunked job that sent 7 passages, of which the records joined whole held 5
    state = JobState(job_id="j", pipeline="p", source=SourceObject(bucket="b", key="k"))
    prepared = Prepared(input_uri="s3://o/i/", parts=1, records_in=3, valid=3, dead_lettered=0, passages=7)
    plan = IngestPlan(bucket="o", key="k", chunks=1, objects=1, passages_embedded=5)
    chunked = state.model_copy(update={"prepared": prepared, "plan": plan})

    # Then the report's passages add up, and a job that never planned an ingest (failed) has none embedded
    assert passage_counts(chunked) == {"sent": 7, "embedded": 5, "dead_lettered": 2}
    failed = state.model_copy(update={"prepared": prepared})
    assert passage_counts(failed) == {"sent": 7, "embedded": 0, "dead_lettered": 7}
    # And an unchunked job reports no passages at all
    whole = state.model_copy(update={"prepared": prepared.model_copy(update={"passages": None})})
    assert passage_counts(whole) is None


PASSAGE_MAPPING = {
    "settings": {"index.knn": True},
    "mappings": {
        "properties": {
            "parent_id": {"type": "keyword"},
            "title": {"type": "keyword"},
            "text": {"type": "text"},
            "embedding": {"type": "knn_vector", "dimension": 3},
        }
    },
}


def passage_layout(**sink: Any) -> dict[str, Any]:
    data = chunking_pipeline_dict(CHUNKING_BY_BYTES)
    data["sink"] = {
        **data["sink"],
        "layout": "passage",
        "mapping": PASSAGE_MAPPING,
        "field_map": {"_id": "$._id", "title": "$.title"},
        **sink,
    }
    return data


def test_the_passage_layout_makes_one_document_per_passage_named_after_its_record() -> None:
    # Given a joined record with two passages, on a passage-layout pipeline
    target = IngestTarget.of_pipeline(parse_pipeline(passage_layout(), "test"))
    passages = [
        {"text": "one ", "start": 0, "end": 4, "vector": [0.0, 0.0, 1.0]},
        {"text": "two", "start": 4, "end": 7, "vector": [0.0, 1.0, 0.0]},
    ]
    record = {"_id": "r", "title": "T", "text": "one two", "_osbatch": {"line": 1, "passages": passages}}

    # When it is laid out
    assert target.passages is not None
    docs = target.passages.documents(record, target.mapper.map(record))

    # Then each passage is a document with the record's fields, its parent's id, its text, offsets and vector
    assert [(doc.doc_id, doc.body) for doc in docs] == [
        (
            "r#0",
            {
                "title": "T",
                "parent_id": "r",
                "text": "one ",
                "start": 0,
                "end": 4,
                "embedding": [0.0, 0.0, 1.0],
            },
        ),
        (
            "r#1",
            {
                "title": "T",
                "parent_id": "r",
                "text": "two",
                "start": 4,
                "end": 7,
                "embedding": [0.0, 1.0, 0.0],
            },
        ),
    ]


def test_a_passage_layout_without_a_parent_id_keyword_is_refused_with_the_field_named() -> None:
    mapping = {"mappings": {"properties": {"embedding": {"type": "knn_vector", "dimension": 3}}}}
    with pytest.raises(ConfigError, match=r"sink\.mapping\.mappings\.properties\.parent_id: .*keyword"):
        parse_pipeline(passage_layout(mapping=mapping), "test")


def test_a_passage_layout_may_not_map_the_fields_it_writes() -> None:
    with pytest.raises(ConfigError, match=r"sink\.field_map\.text: the passage layout writes 'text' itself"):
        parse_pipeline(passage_layout(field_map={"_id": "$._id", "text": "$.text"}), "test")


class OneItemFails:
    """A bulk endpoint that refuses the document with one id and indexes every other."""

    def __init__(self, refused: str = "") -> None:
        self.refused = refused
        self.written: dict[str, Any] = {}

    def bulk(self, *, body: Any, index: Any = None) -> Any:
        lines = body.splitlines()
        actions = [json.loads(line) for line in lines[::2]]
        self.written.update(
            (action["index"]["_id"], json.loads(source))
            for action, source in zip(actions, lines[1::2], strict=True)
        )
        items = []
        for action in actions:
            doc_id = action["index"]["_id"]
            if doc_id == self.refused:
                items.append(
                    {
                        "index": {
                            "_id": doc_id,
                            "status": 400,
                            "error": {"type": "mapper_parsing_exception", "reason": "bad"},
                        }
                    }
                )
            else:
                items.append({"index": {"_id": doc_id, "status": 201}})
        return {"errors": True, "items": items}


def test_a_record_of_several_documents_counts_once_and_is_not_indexed_in_part() -> None:
    # Given two records of passage documents, one of whose passages the index refuses
    writer = BulkWriter(
        OneItemFails("b#1"), "idx", max_bytes=1 << 20, max_retries=0, initial_backoff=0, max_backoff=0
    )
    a, b = RecordRef(0, 1, b"a"), RecordRef(10, 2, b"b")

    # When both are written
    writer.add_record([MappedDoc("a#0", {}), MappedDoc("a#1", {})], a)
    writer.add_record([MappedDoc("b#0", {}), MappedDoc("b#1", {}), MappedDoc("b#2", {})], b)
    failures = writer.close()

    # Then one record is indexed and the other is one failure with the index's reason, never two or three
    assert writer.indexed == 1
    assert [(failure.ref.line, failure.reason) for failure in failures] == [
        (2, "mapper_parsing_exception: bad")
    ]


def test_a_replayed_chunked_record_is_written_again_with_its_passages(s3: Any) -> None:
    # Given a chunked record's map-stage dead letter: the record as joined, passages and vectors included
    passages = [{"text": "one", "start": 0, "end": 3, "vector": [0.0, 0.0, 1.0]}]
    record = {"_id": "r", "title": "T", "text": "one", "_osbatch": {"line": 4, "passages": passages}}
    entry = {
        "job_id": "j",
        "source": "s3://in/a",
        "line": 4,
        "offset": 0,
        "stage": "map",
        "reason": "was",
        "record": record,
    }
    cluster = OneItemFails()

    # When it is replayed
    letters = DeadLetterWriter(s3, "osb-dlq", "dead-letter/j/replay/x.jsonl", job_id="j", source="replay")
    result = replay(
        [json.dumps(entry).encode()],
        target=IngestTarget.of_pipeline(chunking_config()),
        opensearch=cluster,
        dead_letters=letters,
    )

    # Then its document is written with the nested passages, without asking the model again
    assert (result.indexed, result.dead_lettered) == (1, 0)
    assert cluster.written["r"] == {
        "title": "T",
        "passages": [{"text": "one", "start": 0, "end": 3, "embedding": [0.0, 0.0, 1.0]}],
    }
