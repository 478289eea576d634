"""The OpenAI Batch API emulator (HTTP on 127.0.0.1, the `openai_api` fixture) driven by the official SDK."""

from __future__ import annotations

import json

import openai
import pytest

from local.emulators.faults import FAULTS
from osbatch.backends.openai import custom_id
from tests.helpers import OPENAI_TEST_KEY, eventually

BATCH_ENDS = {"completed", "failed", "cancelled", "expired"}


def request_lines(texts: list[str], first_line: int = 1) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": custom_id(number),
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "text-embedding-3-small", "input": text},
            }
        ).encode()
        + b"\n"
        for number, text in enumerate(texts, first_line)
    )


def test_the_official_sdk_runs_a_batch_unchanged(openai_api: str) -> None:
    # Given the SDK pointed at the emulator, and one request the model will fail
    FAULTS.update(fail_records_containing="POISON")
    client = openai.OpenAI(base_url=openai_api, api_key=OPENAI_TEST_KEY)
    # When it uploads a file, creates a batch and retrieves it until it ends
    uploaded = client.files.create(file=("in.jsonl", request_lines(["a", "POISON", "c"])), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    batch = eventually(
        lambda: ended if (ended := client.batches.retrieve(batch.id)).status in BATCH_ENDS else None,
        interval=0.05,
        what="the end of the batch",
    )
    # Then it completed with the counts, results in the output file and the failure in the error file
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        3,
        2,
        1,
    )
    assert batch.output_file_id and batch.error_file_id
    outputs = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    errors = [json.loads(line) for line in client.files.content(batch.error_file_id).text.splitlines()]
    assert sorted(line["custom_id"] for line in outputs) == ["line-1", "line-3"]
    # text-embedding-3-small's full size, as the request names no dimensions
    assert all(len(line["response"]["body"]["data"][0]["embedding"]) == 1536 for line in outputs)
    assert [(line["custom_id"], line["response"]) for line in errors] == [("line-2", None)]
    assert errors[0]["error"]["code"] == "server_error"


def test_a_wrong_key_is_refused_as_the_api_does(openai_api: str) -> None:
    # Given a client with the wrong key / When it lists batches / Then it gets a 401 AuthenticationError
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=openai_api, api_key="sk-wrong").batches.list()
