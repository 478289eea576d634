"""The demo's long documents: samples/python-modules through the chunking pipeline `python-modules`, then a
question answered deep inside a document, found by its best passage.

Called by cli/demo.py when the demo's stack deploys the pipeline (the default sagemaker demo does). A
local-runtime module, imported only inside the `demo` command, like cli/demo.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cli.local_search import local_query_embedder
from local.paths import REPO_ROOT
from osbatch.chunking.mapping import nested_vector_fields
from osbatch.config import PipelineConfig
from osbatch.models import job_id_for

PIPELINE = "python-modules"
SAMPLE = REPO_ROOT / "samples" / "python-modules" / "modules.jsonl"
QUESTIONS = REPO_ROOT / "samples" / "python-modules" / "questions.jsonl"
QUESTION = 0  # questions.jsonl's first: answered at word 1572 of bz2's 1640
SNIPPET_CHARS = 160
# A subset keeps `make demo` within minutes: the whole sample (63 modules, 2,942 passages) added ~190 s to
# it on 2 shared cores, this one (24 modules, 1,010 passages: the first 20, bz2 among them, and the other
# compression modules, which compete for the question) ~45 s (docs/long-documents.md).
FIRST_MODULES = 20
COMPETITORS = ("gzip", "lzma", "tarfile", "zipfile")
SUBSET_NAME = "modules-demo.jsonl"


def demo_subset() -> bytes:
    """The sample's lines the demo uploads, as they are in the file."""
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    return b"".join(
        line
        for number, line in enumerate(lines)
        if number < FIRST_MODULES or json.loads(line)["_id"] in COMPETITORS
    )


def upload_long_documents(
    target: Any, config: PipelineConfig, progress: Callable[[str], None]
) -> tuple[str, str]:
    """Upload the demo's subset of the sample under the pipeline's prefix; (file name, job id)."""
    s3 = target.client("s3")
    bucket = target.output("InputBucketName")
    key = f"{config.source.prefix}{SUBSET_NAME}"
    body = demo_subset()
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    shown, documents = SAMPLE.relative_to(REPO_ROOT), len(body.splitlines())
    progress(f"uploaded {documents} long documents of {shown} -> s3://{bucket}/{key} (chunked)")
    return SUBSET_NAME, job_id_for(config.name, bucket, key, etag)


def passages_line(job: dict[str, Any]) -> str:
    """The job's passage counts as the demo prints them."""
    counts = (job.get(f"passages_{name}", 0) for name in ("sent", "embedded", "dead_lettered"))
    return "passages: {} sent, {} embedded, {} dead-lettered".format(*counts)


def nested_knn(client: Any, config: PipelineConfig, vector: list[float], k: int = 3) -> dict[str, Any]:
    """Documents by their best passage: a nested k-NN query with the best passages as inner hits.

    HOOK for the lead: `osbatch search` is learning nested indices (documents with inner hits) in the search
    module; once merged, call its public search function here instead of building the query."""
    (nested,) = nested_vector_fields(config.sink.mapping)
    field = nested.field
    query = {
        "size": k,
        "_source": ["title"],
        "query": {
            "nested": {
                "path": field,
                "score_mode": "max",
                "query": {"knn": {f"{field}.{nested.vector}": {"vector": vector, "k": k * 5}}},
                "inner_hits": {"size": 1, "_source": [f"{field}.text", f"{field}.start", f"{field}.end"]},
            }
        },
    }
    response: dict[str, Any] = client.search(index=config.sink.index, body=query)
    return response


def search_deep_passage(client: Any, config: PipelineConfig) -> bool:
    """Ask a question answered deep in a document and print each hit's best passage; whether the right
    document came first."""
    question = json.loads(QUESTIONS.read_text().splitlines()[QUESTION])
    embed = local_query_embedder(config)
    assert embed is not None, "the local runtime embeds queries for every backend"
    client.indices.refresh(index=config.sink.index)
    response = nested_knn(client, config, embed(question["question"]))
    print(f'\nlong documents, search by best passage: "{question["question"]}"')
    hits = response["hits"]["hits"]
    field = nested_vector_fields(config.sink.mapping)[0].field
    for rank, hit in enumerate(hits, start=1):
        (inner,) = hit["inner_hits"][field]["hits"]["hits"]
        passage = inner["_source"]
        text = " ".join(passage["text"].split())
        shown = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"
        print(
            f"  {rank}. [{hit['_score']:.3f}] {hit['_source'].get('title', hit['_id'])}: best passage at "
            f"characters {passage['start']}-{passage['end']}\n     {shown}"
        )
    found = bool(hits) and hits[0]["_id"] == question["document_id"]
    print(f"  expected {question['document_id']}: {question['why']}")
    return found
