"""Long-document indices on the local node, loaded straight from a sample: for the search tests and the bench.

Each record's text is chunked with its pipeline's `source.chunking` (osbatch.chunking, the MiniLM
tokenizer) and every passage embedded with the local all-MiniLM-L6-v2, then bulk-loaded into the index
the pipeline's mapping describes, in its layout (osbatch.search.layout):
- record: one document per record, `<nested path>: [{text, start, end, <vector>}]` beside its title;
- passage: one document per passage, id `<record id>#<n>`, with `parent_id`, `text`, `start`, `end`;
- flat: one document per record with the vector of its whole text (what a record gets without chunking:
  the model reads its first 256 wordpieces).
This bypasses the pipeline on purpose: it gives search a fixed index to query whatever the state of
Prepare and ingest, and the bench a baseline of the same vectors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from local.model import Embedder
from local.model.packaged import sentence_transformers_folder
from local.opensearch.mapping import localize_mapping
from osbatch.chunking import Chunker, ChunkingConfig, Passage, TokenizerJsonCounter
from osbatch.config import PipelineConfig
from osbatch.search.layout import (
    PARENT_ID,
    PASSAGE_END,
    PASSAGE_START,
    PASSAGE_TEXT,
    LayoutKind,
    search_layout,
)

BULK_DOCUMENTS = 200


@dataclass(frozen=True)
class ChunkedRecord:
    record: dict[str, Any]
    passages: list[Passage]


def chunk_records(records: Sequence[dict[str, Any]], chunking: ChunkingConfig) -> list[ChunkedRecord]:
    counter = TokenizerJsonCounter.from_file(sentence_transformers_folder() / "tokenizer.json")
    chunker = Chunker(chunking, counter)
    return [ChunkedRecord(record, list(chunker.passages(str(record["text"])))) for record in records]


def load_index(
    client: Any,
    config: PipelineConfig,
    records: Sequence[dict[str, Any]],
    embedder: Embedder,
    *,
    chunking: ChunkingConfig | None = None,
) -> int:
    """(Re)creates the pipeline's index from its mapping and loads the records into it; returns the number
    of vectors embedded. chunking defaults to the pipeline's own (required unless the layout is flat)."""
    layout = search_layout(config)
    index = config.sink.index
    if client.indices.exists(index=index):
        client.indices.delete(index=index)
    localized, _notes = localize_mapping(config.sink.mapping, index=index)  # lucene: the node has no faiss
    client.indices.create(index=index, body=localized)
    if layout.kind is LayoutKind.FLAT:
        vectors = embedder.embed([str(record["text"]) for record in records])
        documents = [
            (
                str(record["_id"]),
                {**_fields(record), "text": record["text"], layout.vector_field: vector.tolist()},
            )
            for record, vector in zip(records, vectors, strict=True)
        ]
    else:
        chunking = chunking or config.source.chunking
        if chunking is None:
            raise ValueError(f"pipeline {config.name}: the {layout.kind} layout needs source.chunking")
        chunked = chunk_records(records, chunking)
        vectors = embedder.embed([passage.text for item in chunked for passage in item.passages])
        documents = list(_documents(layout.kind, layout.vector_field, chunked, iter(vectors.tolist())))
    for start in range(0, len(documents), BULK_DOCUMENTS):
        body: list[dict[str, Any]] = []
        for doc_id, document in documents[start : start + BULK_DOCUMENTS]:
            body += [{"index": {"_index": index, "_id": doc_id}}, document]
        answer = client.bulk(body=body)
        if answer.get("errors"):
            failed = next(item for item in answer["items"] if item["index"].get("error"))
            raise RuntimeError(f"bulk load into {index} failed: {failed['index']['error']}")
    client.indices.refresh(index=index)
    return len(vectors)


def _documents(
    kind: LayoutKind, vector_field: str, chunked: list[ChunkedRecord], vectors: Iterator[list[float]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in chunked:
        record_id = str(item.record["_id"])
        if kind is LayoutKind.RECORD:
            path, vector = vector_field.split(".", 1)
            passages = [{**_passage(passage), vector: next(vectors)} for passage in item.passages]
            yield record_id, {**_fields(item.record), path: passages}
        else:
            for number, passage in enumerate(item.passages):
                passage_document = {PARENT_ID: record_id, **_passage(passage), vector_field: next(vectors)}
                yield f"{record_id}#{number}", passage_document


def _passage(passage: Passage) -> dict[str, Any]:
    return {PASSAGE_TEXT: passage.text, PASSAGE_START: passage.start, PASSAGE_END: passage.end}


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    """The record's fields beside its passages: all but its id and its text."""
    return {key: value for key, value in record.items() if key not in {"_id", "text"}}
