"""Long records into passages: the chunking config (spec), token counting (tokens) and the chunker.

Pure: no I/O, no environment. The caller supplies the TokenCounter (for MiniLM, built from the model's
tokenizer.json) and turns a NotChunkable into the record's dead letter.
"""

from osbatch.chunking.chunker import (
    BlankText,
    Chunker,
    NotChunkable,
    OnlyDelimiters,
    Passage,
    TooManyPassages,
)
from osbatch.chunking.spec import (
    ChunkingConfig,
    ChunkingStep,
    Delimiter,
    FixedTokenLength,
    IndexLayout,
    OnMaxChunkLimit,
    TokenizerName,
)
from osbatch.chunking.tokens import MAX_TOKENS, TokenCounter, TokenizerJsonCounter, Utf8ByteEstimate

__all__ = [
    "MAX_TOKENS",
    "BlankText",
    "Chunker",
    "ChunkingConfig",
    "ChunkingStep",
    "Delimiter",
    "FixedTokenLength",
    "IndexLayout",
    "NotChunkable",
    "OnMaxChunkLimit",
    "OnlyDelimiters",
    "Passage",
    "TokenCounter",
    "TokenizerJsonCounter",
    "TokenizerName",
    "TooManyPassages",
    "Utf8ByteEstimate",
]
