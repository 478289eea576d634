"""The chunking section of a pipeline's `source`: which algorithms split a record's text into passages.

Algorithms and parameter names follow neural-search's `text_chunking` ingest processor ("Text chunking
processor", https://docs.opensearch.org/latest/ingest-pipelines/processors/text-chunking/):
`fixed_token_length` (`token_limit`, `overlap_rate`, `max_chunk_limit`) and `delimiter` (`delimiter`,
`max_chunk_limit`). Where that processor chains algorithms with several processors in one ingest pipeline,
osbatch chains them in a list, applied in order.

Two deliberate differences, both so that nothing is lost silently:
- past `max_chunk_limit` the processor appends the rest of the text to the last chunk, which the model
  then truncates (MiniLM) or refuses (Titan, OpenAI). osbatch dead-letters the record with a reason that
  names the limit, unless `on_max_chunk_limit: append_to_last_chunk` asks for the processor's behaviour;
- `token_limit` counts the model's tokens (`tokenizer`), not an OpenSearch analyzer's words, so a
  passage never exceeds what the model reads.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from osbatch.strict import Strict

# text_chunking's defaults.
DEFAULT_TOKEN_LIMIT = 384
DEFAULT_MAX_CHUNK_LIMIT = 100
DEFAULT_DELIMITER = "\n\n"
MAX_OVERLAP_RATE = 0.5


class TokenizerName(StrEnum):
    """How tokens are counted (chunking.tokens says what each one is and why)."""

    MINILM = "all-MiniLM-L6-v2"  # the model's own tokenizer.json: exact
    UTF8_BYTES = "utf8-bytes"  # one token per UTF-8 byte: an upper bound for byte-level BPE models


class IndexLayout(StrEnum):
    """How a chunked record is indexed (`sink.layout`; ingest/passage_layout.py)."""

    RECORD = "record"  # one document per record, its passages in a nested field (OpenSearch's nested k-NN)
    PASSAGE = "passage"  # one document per passage, with the record's id as parent_id


class OnMaxChunkLimit(StrEnum):
    DEAD_LETTER = "dead_letter"
    # text_chunking's behaviour: the rest of the text goes into the last chunk, past the token limit.
    APPEND_TO_LAST_CHUNK = "append_to_last_chunk"


class FixedTokenLength(Strict):
    token_limit: int | None = Field(
        None,
        ge=1,
        description="tokens per passage; default 384, or the model's limit where that is lower",
    )
    overlap_rate: float = Field(0.0, ge=0.0, le=MAX_OVERLAP_RATE, description="share of a passage repeated")
    max_chunk_limit: int = Field(DEFAULT_MAX_CHUNK_LIMIT, ge=1)


class Delimiter(Strict):
    delimiter: str = Field(DEFAULT_DELIMITER, min_length=1)
    max_chunk_limit: int = Field(DEFAULT_MAX_CHUNK_LIMIT, ge=1)


class ChunkingStep(Strict):
    """One algorithm, written as text_chunking writes its `algorithm` object: `{<name>: {<parameters>}}`."""

    fixed_token_length: FixedTokenLength | None = None
    delimiter: Delimiter | None = None

    @model_validator(mode="after")
    def _one_algorithm(self) -> ChunkingStep:
        given = [name for name in ("fixed_token_length", "delimiter") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "each chunking step names one algorithm: fixed_token_length or delimiter "
                f"(got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def algorithm(self) -> FixedTokenLength | Delimiter:
        return self.fixed_token_length or self.delimiter  # type: ignore[return-value]  # one is set


class ChunkingConfig(Strict):
    algorithms: list[ChunkingStep] = Field(
        default_factory=lambda: [ChunkingStep(fixed_token_length=FixedTokenLength())],
        min_length=1,
        description="applied in order; each splits the passages of the one before",
    )
    tokenizer: TokenizerName | None = Field(
        None,
        description="how token_limit is counted; default: all-MiniLM-L6-v2 for sagemaker and ml-commons "
        "(the model they serve here), utf8-bytes for bedrock and openai",
    )
    on_max_chunk_limit: OnMaxChunkLimit = OnMaxChunkLimit.DEAD_LETTER

    @property
    def token_limits(self) -> list[int | None]:
        return [step.fixed_token_length.token_limit for step in self.algorithms if step.fixed_token_length]
