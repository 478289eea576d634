"""The emulators refuse over-long embedding inputs as the services do, at the limit and not before.

Titan Text Embeddings V2: 8,192 tokens or 50,000 characters (InvokeModel's ValidationException, a batch
record's `error`); OpenAI's embedding models: 8,191 tokens (/v1/embeddings' 400 invalid_request_error, a
batch request's line in the error file). Each limit is tried with n and n+1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import openai
import pytest
from moto import mock_aws

from local.emulators.bedrock_runtime import InvokeError, invoke_model
from local.emulators.faults import FAULTS
from local.emulators.input_limits import (
    INVALID_INPUT,
    OPENAI_MAX_REQUEST_TOKENS,
    OPENAI_MAX_TOKENS,
    TITAN_MAX_CHARACTERS,
    TITAN_MAX_TOKENS,
    count_tokens,
    openai_refusal,
)
from local.model import Embedder
from osbatch.backends.bedrock import BedrockBackend
from osbatch.backends.openai import custom_id
from osbatch.config import BedrockJobConfig, BedrockModelFamily
from tests.helpers import OPENAI_TEST_KEY, eventually

TITAN_ID = "amazon.titan-embed-text-v2:0"
BUCKET = "osb-out"
# " the" is one cl100k_base token wherever it stands after the first word: n words are n tokens.
WORD = " the"
# cl100k_base has one token for 64 "=", so 50,000 of them are far fewer than 8,192 tokens: only the
# character limit can refuse them.
DENSE = "="


def tokens_long(n: int) -> str:
    text = "the" + WORD * (n - 1)
    assert count_tokens(text) == n  # the construction, checked by the counter the emulators use
    return text


def characters_long(n: int) -> str:
    text = DENSE * n
    assert count_tokens(text) < TITAN_MAX_TOKENS
    return text


def titan(text: str, minilm: Embedder) -> dict[str, Any]:
    return invoke_model(TITAN_ID, {"inputText": text, "dimensions": 256}, lambda: minilm)


def test_titan_invoke_model_takes_8192_tokens_and_refuses_8193(minilm: Embedder) -> None:
    # Given texts of exactly 8,192 and 8,193 tokens
    # When InvokeModel embeds them
    # Then the first is embedded, the second refused with Bedrock's ValidationException and its numbers
    assert len(titan(tokens_long(TITAN_MAX_TOKENS), minilm)["embedding"]) == 256
    with pytest.raises(InvokeError) as refused:
        titan(tokens_long(TITAN_MAX_TOKENS + 1), minilm)
    assert refused.value.error_type == "ValidationException"
    assert str(refused.value) == (
        "400 Bad Request: Too many input tokens. Max input tokens: 8192, request input token count: 8193"
    )


def test_titan_invoke_model_takes_50000_characters_and_refuses_50001(minilm: Embedder) -> None:
    # Given texts of 50,000 and 50,001 characters, both well under the token limit
    assert len(titan(characters_long(TITAN_MAX_CHARACTERS), minilm)["embedding"]) == 256
    # When the longer one is sent / Then it is refused for its characters
    with pytest.raises(InvokeError) as refused:
        titan(characters_long(TITAN_MAX_CHARACTERS + 1), minilm)
    assert refused.value.error_type == "ValidationException"
    assert "expected maxLength: 50000, actual: 50001" in str(refused.value)


@pytest.fixture
def bedrock(emulators: None) -> Iterator[BedrockBackend]:
    FAULTS.update(min_records_per_job=1)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        settings = BedrockJobConfig(model_id=TITAN_ID, family=BedrockModelFamily.TITAN_EMBED_V2)
        yield BedrockBackend(
            settings,
            boto3.client("bedrock", region_name="us-east-1"),
            s3,
            {"osbatch:pipeline": "limits"},
            role_arn="arn:aws:iam::123456789012:role/osbatch-bedrock",
        )


def test_a_bedrock_batch_job_fails_only_the_over_long_records(bedrock: BedrockBackend) -> None:
    # Given a batch of four Titan records: at and over each limit
    texts = [
        tokens_long(TITAN_MAX_TOKENS),
        tokens_long(TITAN_MAX_TOKENS + 1),
        characters_long(TITAN_MAX_CHARACTERS),
        characters_long(TITAN_MAX_CHARACTERS + 1),
    ]
    lines = [bedrock.input_line({"_id": str(n)}, n, text) for n, text in enumerate(texts, 1)]
    s3 = boto3.client("s3", region_name="us-east-1")
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    s3.put_object(Bucket=BUCKET, Key="jobs/j/input/part-00000.jsonl", Body=body)
    # When the batch job runs
    remote = bedrock.submit(
        "limits-0123456789abcdef", f"s3://{BUCKET}/jobs/j/input/", f"s3://{BUCKET}/jobs/j/out/"
    )
    eventually(
        lambda: bedrock.status(remote).state.terminal or None, timeout=120, interval=0.1, what="the job"
    )
    # Then the records at the limits are embedded, and those over them fail alone with the service's error
    (output,) = bedrock.outputs(remote)
    raw = s3.get_object(Bucket=BUCKET, Key=output.key)["Body"].read().decode().splitlines()
    line_of = {sent["recordId"]: n for n, sent in enumerate(lines, 1)}
    by_line = {line_of[line["recordId"]]: line for line in map(json.loads, raw)}
    assert "modelOutput" in by_line[1] and "modelOutput" in by_line[3]
    assert by_line[2]["error"]["errorCode"] == 400
    assert "Too many input tokens" in by_line[2]["error"]["errorMessage"]
    assert by_line[4]["error"]["errorCode"] == 400
    assert "expected maxLength: 50000, actual: 50001" in by_line[4]["error"]["errorMessage"]


def test_openai_embeddings_take_8191_tokens_and_refuse_8192(openai_api: str) -> None:
    client = openai.OpenAI(base_url=openai_api, api_key=OPENAI_TEST_KEY)
    # Given inputs of exactly 8,191 and 8,192 tokens
    # When /v1/embeddings embeds them
    taken = client.embeddings.create(model="text-embedding-3-small", input=tokens_long(OPENAI_MAX_TOKENS))
    assert len(taken.data[0].embedding) == 1536
    # Then the longer is a 400 invalid_request_error naming the limit and its count
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="text-embedding-3-small", input=tokens_long(OPENAI_MAX_TOKENS + 1))
    error = refused.value.body
    assert isinstance(error, dict) and error["type"] == "invalid_request_error"
    assert "maximum context length is 8191 tokens, however you requested 8192 tokens" in error["message"]


def test_an_openai_batch_fails_only_the_over_long_request(openai_api: str) -> None:
    client = openai.OpenAI(base_url=openai_api, api_key=OPENAI_TEST_KEY)
    # Given a batch whose second request's input list holds one input over the limit
    bodies = [
        {"model": "text-embedding-3-small", "input": [tokens_long(OPENAI_MAX_TOKENS)]},
        {"model": "text-embedding-3-small", "input": ["short", tokens_long(OPENAI_MAX_TOKENS + 1)]},
    ]
    requests = b"".join(
        json.dumps(
            {"custom_id": custom_id(n), "method": "POST", "url": "/v1/embeddings", "body": body}
        ).encode()
        + b"\n"
        for n, body in enumerate(bodies, 1)
    )
    uploaded = client.files.create(file=("in.jsonl", requests), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    # When it runs to its end
    done = eventually(
        lambda: ended if (ended := client.batches.retrieve(batch.id)).status == "completed" else None,
        timeout=120,
        interval=0.05,
        what="the end of the batch",
    )
    # Then the first request is in the output file and the second in the error file, with the endpoint's
    # 400 response, as the Batch API records a failed request
    assert done.output_file_id and done.error_file_id
    outputs = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    (error,) = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert [line["custom_id"] for line in outputs] == [custom_id(1)]
    assert error["custom_id"] == custom_id(2) and error["error"] is None
    assert error["response"]["status_code"] == 400
    body = error["response"]["body"]["error"]
    assert body["type"] == "invalid_request_error" and "(input 1)" in body["message"]


def test_an_openai_request_takes_300000_tokens_summed_over_its_inputs_and_refuses_300001() -> None:
    # Given inputs each within the per-input limit, summing to exactly 300,000 tokens, then one more
    inputs = [tokens_long(7_500)] * 40
    assert sum(map(count_tokens, inputs)) == OPENAI_MAX_REQUEST_TOKENS
    # Then the request is taken at the limit and refused one token over it, naming both numbers
    assert openai_refusal(inputs) is None
    assert openai_refusal([*inputs, "the"]) == "Requested 300001 tokens, max 300000 tokens per request"


def test_an_openai_request_refuses_an_empty_input_and_more_than_2048_inputs() -> None:
    # Given requests the API reference rules out: an empty string, 2,049 inputs (2,048 are taken)
    # Then each is refused as invalid input
    assert openai_refusal(["fine", ""]) == INVALID_INPUT
    assert openai_refusal(["the"] * 2_048) is None
    assert openai_refusal(["the"] * 2_049) == INVALID_INPUT
