"""The embedding services' input limits, refused by the emulators the way each service refuses them.

- Titan Text Embeddings V2 takes at most 8,192 tokens or 50,000 characters per `inputText` ("Amazon
  Titan Text Embeddings models", https://docs.aws.amazon.com/bedrock/latest/userguide/titan-embedding-models.html).
  InvokeModel answers a longer text with a ValidationException (HTTP 400); in a batch job the record
  fails alone, with an `error` in its output line ("View the results of a batch inference job",
  https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-results.html). The messages are
  the service's own: "Malformed input request: #/inputText: expected maxLength: 50000, actual: ..." for
  characters, "400 Bad Request: Too many input tokens. Max input tokens: 8192, request input token
  count: ..." for tokens.
- OpenAI's embedding models take at most 8,191 tokens per input ("Vector embeddings",
  https://platform.openai.com/docs/guides/embeddings, the models table's "max input"; the API reference
  rounds it to 8192), no empty string, at most 2,048 inputs and 300,000 tokens summed over the inputs of
  one request ("Create embeddings", https://platform.openai.com/docs/api-reference/embeddings/create).
  /v1/embeddings answers HTTP 400 with an `invalid_request_error`; in a batch that request's line goes to
  the error file with that response ("Batch API", https://platform.openai.com/docs/guides/batch).

Tokens are counted with cl100k_base, the encoding of text-embedding-3-small, -3-large and ada-002 (OpenAI
Cookbook "How to count tokens with tiktoken"), through the `bpe-openai` package, which ships the encoding
in its wheel and so counts offline (tiktoken fetches encodings from the network on first use). Titan's
tokenizer is not published: the emulator counts its tokens with cl100k_base too, a byte-level BPE of
the same kind, so a text near the limit may be refused here and not by Bedrock or the other way round;
the 50,000-character limit is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

TITAN_MAX_TOKENS = 8_192
TITAN_MAX_CHARACTERS = 50_000
OPENAI_MAX_TOKENS = 8_191
OPENAI_MAX_INPUTS = 2_048
OPENAI_MAX_REQUEST_TOKENS = 300_000
INVALID_INPUT = (
    "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
)


class Encoding(Protocol):
    def encode(self, text: str) -> Sequence[int]: ...


@lru_cache(maxsize=1)
def cl100k_base() -> Encoding:
    import warnings

    import bpe_openai

    with warnings.catch_warnings():  # 0.1.4 reads its data with importlib.resources.open_binary
        warnings.simplefilter("ignore", DeprecationWarning)
        encoding: Encoding = bpe_openai.get_encoding("cl100k_base")
        encoding.encode("")  # the data is read on first use
    return encoding


def count_tokens(text: str) -> int:
    """cl100k_base tokens of text (special tokens are plain text here, as the embeddings API reads them)."""
    return len(cl100k_base().encode(text))


def titan_refusal(text: str) -> str | None:
    """Why Titan Text Embeddings V2 refuses inputText, in the service's words; None when it takes it."""
    if len(text) > TITAN_MAX_CHARACTERS:
        return (
            f"Malformed input request: #/inputText: expected maxLength: {TITAN_MAX_CHARACTERS}, "
            f"actual: {len(text)}, please reformat your input and try again."
        )
    tokens = count_tokens(text)
    if tokens > TITAN_MAX_TOKENS:
        return (
            f"400 Bad Request: Too many input tokens. Max input tokens: {TITAN_MAX_TOKENS}, "
            f"request input token count: {tokens}"
        )
    return None


def openai_refusal(texts: Sequence[str]) -> str | None:
    """Why an OpenAI embeddings request with these inputs is refused, in the API's words; None if taken."""
    if not texts or len(texts) > OPENAI_MAX_INPUTS or any(not text for text in texts):
        return INVALID_INPUT
    total = 0
    for index, text in enumerate(texts):
        tokens = count_tokens(text)
        if tokens > OPENAI_MAX_TOKENS:
            where = "" if len(texts) == 1 else f" (input {index})"
            return (
                f"This model's maximum context length is {OPENAI_MAX_TOKENS} tokens, however you requested "
                f"{tokens} tokens{where} ({tokens} in your prompt; 0 for the completion). Please reduce your "
                "prompt; or completion length."
            )
        total += tokens
    if total > OPENAI_MAX_REQUEST_TOKENS:
        return f"Requested {total} tokens, max {OPENAI_MAX_REQUEST_TOKENS} tokens per request"
    return None
