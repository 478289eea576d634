"""The openai backend on the real local runtime: S3 upload -> OpenAI batch (local emulator) -> k-NN index."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from cli.local_search import local_query_embedder
from cli.search import semantic_search
from local.aws import session
from local.runtime import AWS_URL, LocalRuntime
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from osbatch.search.client import opensearch_client
from tests.integration.helpers import TOPICS, dead_letters, set_faults, upload, wait_for_end

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]
PIPELINE = "e2e-openai"


def test_an_upload_is_embedded_by_the_batch_api_with_failures_dead_lettered(
    stack: Any, config: PipelineConfig, jobs: JobTable, runtime: LocalRuntime
) -> None:
    # Given three records and the model failing a fourth
    set_faults(fail_records_containing="POISON")
    records = [{"_id": f"openai-{name}", "text": text} for name, text in TOPICS]
    records.insert(1, {"_id": "openai-bad", "text": "POISON"})
    body = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    # When the file is uploaded
    job_id = upload(stack, config, f"openai-{time.time_ns()}.jsonl", body)
    job = wait_for_end(jobs, job_id)
    # Then the job is PARTIALLY_COMPLETED with the error file's record dead-lettered at stage inference
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"]) == (
        "PARTIALLY_COMPLETED",
        4,
        3,
        1,
    )
    (letter,) = dead_letters(stack, job_id)
    assert (letter["line"], letter["stage"], letter["record"]["_id"]) == (2, "inference", "openai-bad")
    # And the API key is nowhere in the job's record
    key = (
        session()
        .client("secretsmanager", endpoint_url=AWS_URL)
        .get_secret_value(SecretId="osbatch/openai-api-key")["SecretString"]
    )
    assert key not in json.dumps(job, default=str)
    # And a k-NN query finds the right document first
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=config.sink.index)
    hits = semantic_search(
        client, config, "decompress a .gz file", k=3, query_vector=local_query_embedder(config)
    )
    assert hits[0].doc_id == "openai-gzip"
