"""`osbatch batch-ingest request.json`: an ML Commons `_batch_ingestion` body, run by osbatch's ingest engine.

The request is the body of OpenSearch's "Asynchronous batch ingestion" API, as is
(https://docs.opensearch.org/latest/ml-commons-plugin/api/async-batch-ingest/); where it runs is the CLI's
business: the index on the local node when the runtime is up (or --endpoint), files from S3 (the standard
credential chain), local paths, or the OpenAI Files API (OPENAI_API_KEY; OPENAI_BASE_URL for a compatible
endpoint). Dead letters go to a local directory, one JSONL file per chunk.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.batch_progress import BatchDisplay, BatchTracker, CountingStore, PlainBatchDisplay
from osbatch.batch_ingestion.local_files import LocalFiles
from osbatch.batch_ingestion.request import BatchIngestRequest, BatchRequestError, parse_batch_request
from osbatch.batch_ingestion.run import BatchReport, DeadLetterStore, InputFile, run_batch_ingest
from osbatch.config import BulkConfig
from osbatch.ingest.readers import ObjectStore
from osbatch.models.ingest import ChunkResult
from osbatch.s3uri import split_s3_uri

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


class BatchIngestError(RuntimeError):
    pass


def load_request(path: Path) -> BatchIngestRequest:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BatchIngestError(f"{path}: no such file") from None
    except ValueError as error:
        raise BatchIngestError(f"{path}: not JSON: {error}") from None
    try:
        return parse_batch_request(data)
    except BatchRequestError as error:
        raise BatchIngestError(f"{path}: {error}") from None


def input_files(request: BatchIngestRequest, s3: Any, scratch: Path) -> tuple[ObjectStore, list[InputFile]]:
    kind, sources = request.data_source.type, request.data_source.source
    if kind == "file":
        files = []
        for source in sources:
            path = Path(source).expanduser().resolve()
            if not path.is_file():
                raise BatchIngestError(f"data_source: {source} is not a file")
            files.append(InputFile("", str(path), path.stat().st_size, source))
        return LocalFiles(), files
    if kind == "s3":
        files = []
        for source in sources:
            bucket, key = split_s3_uri(source)
            size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
            files.append(InputFile(bucket, key, size, source))
        return s3, files
    return LocalFiles(), [_download_openai_file(file_id, scratch) for file_id in sources]


def _download_openai_file(file_id: str, scratch: Path) -> InputFile:
    import requests

    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        raise BatchIngestError("data_source type openAI needs OPENAI_API_KEY in the environment")
    base = os.environ.get("OPENAI_BASE_URL", OPENAI_DEFAULT_URL).rstrip("/")
    path = scratch / f"{file_id}.jsonl"
    # Streamed to disk: a batch output can be gigabytes; the engine then reads it by byte ranges.
    with requests.get(
        f"{base}/files/{file_id}/content", headers={"Authorization": f"Bearer {key}"}, stream=True, timeout=60
    ) as response:
        if response.status_code != 200:
            raise BatchIngestError(f"OpenAI file {file_id}: HTTP {response.status_code}")
        with path.open("wb") as out:
            for piece in response.iter_content(1024 * 1024):
                out.write(piece)
    return InputFile("", str(path), path.stat().st_size, file_id)


def run(
    request: BatchIngestRequest,
    *,
    opensearch: Any,
    s3: Any,
    dead_letter_dir: Path,
    bulk: BulkConfig,
    say: Any = print,
    display: BatchDisplay | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BatchReport:
    """display: how progress is shown (cli/batch_progress.py); by default a line per chunk through `say`."""
    shown = display or PlainBatchDisplay(say)
    if not opensearch.indices.exists(index=request.index_name):
        # A bulk into a missing index would create it with dynamic mappings: vectors as plain floats.
        raise BatchIngestError(
            f"index '{request.index_name}' does not exist; create it with its knn_vector mapping first "
            "(PUT /<index>, the first step of OpenSearch's Asynchronous batch ingestion guide)"
        )
    run_id = time.strftime("batch-%Y%m%dT%H%M%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="osbatch-batch-") as scratch:
        objects, files = input_files(request, s3, Path(scratch))
        total = sum(file.size for file in files)
        tracker = BatchTracker(run_id, total, clock=clock)
        header = f"{run_id}: {len(files)} file(s), {total} bytes, into index {request.index_name}"
        shown.start(header, tracker)

        def progress(report: BatchReport, result: ChunkResult) -> None:
            shown.chunk(
                tracker.snapshot(report),
                f"  chunk {result.chunk}: {result.lines} records, {result.indexed} indexed, "
                f"{result.dead_lettered} dead-lettered "
                f"(so far {report.records_in} in, {report.indexed} indexed)",
            )

        def read(size: int) -> None:
            tracker.read(size)
            shown.reading(tracker)

        store = DeadLetterStore(LocalFiles(), str(dead_letter_dir), f"{run_id}/")
        report = run_batch_ingest(
            request, files, run_id=run_id, objects=CountingStore(objects, read), opensearch=opensearch,
            dead_letters=store, bulk=bulk, progress=progress,
        )  # fmt: skip
    shown.end(
        report,
        f"done: {report.records_in} records in, {report.indexed} indexed, "
        f"{report.dead_lettered} dead-lettered"
        + (f"; dead letters in {report.dead_letters}" if report.dead_lettered else ""),
    )
    return report
