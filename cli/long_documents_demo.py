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
from cli.search import semantic_search
from local.paths import REPO_ROOT
from osbatch.config import PipelineConfig
from osbatch.models import job_id_for

PIPELINE = "python-modules"
SAMPLE = REPO_ROOT / "samples" / "python-modules" / "modules.jsonl"
QUESTIONS = REPO_ROOT / "samples" / "python-modules" / "questions.jsonl"
QUESTION = 0  # questions.jsonl's first: answered at word 1572 of bz2's 1640
SNIPPET_CHARS = 160
# A subset keeps `make demo` within minutes: the whole sample (63 modules, 5,297 passages of 128 wordpieces)
# is about three times this one (24 modules, 1,809 passages: the first 20, bz2 among them, and the other
# compression modules, which compete for the question); docs/long-documents.md has the timings.
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


def search_deep_passage(client: Any, config: PipelineConfig) -> bool:
    """Ask a question answered deep in a document, through `osbatch search`'s own path (documents with their
    best passages as inner hits: cli/search.py), and print each hit's best passage; whether the right
    document came first."""
    question = json.loads(QUESTIONS.read_text().splitlines()[QUESTION])
    embed = local_query_embedder(config)
    assert embed is not None, "the local runtime embeds queries for every backend"
    client.indices.refresh(index=config.sink.index)
    hits = semantic_search(client, config, question["question"], k=3, query_vector=embed)
    print(f'\nlong documents, search by best passage: "{question["question"]}"')
    for rank, hit in enumerate(hits, start=1):
        best = hit.passages[0]
        text = " ".join(best.text.split())
        shown = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"
        print(
            f"  {rank}. [{hit.score:.3f}] {hit.title}: best passage at characters {best.start}-{best.end}\n"
            f"     {shown}"
        )
    found = bool(hits) and hits[0].doc_id == question["document_id"]
    print(f"  expected {question['document_id']}: {question['why']}")
    return found
