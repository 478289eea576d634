"""The chunker: every character in a passage, exact offsets, the model's token limit, and bad input typed."""

from __future__ import annotations

import json
import pydoc
from collections.abc import Sequence
from functools import cache
from itertools import pairwise

import pytest

from local.model import packaged
from osbatch.chunking import (
    BlankText,
    Chunker,
    ChunkingConfig,
    NotChunkable,
    OnlyDelimiters,
    Passage,
    TokenizerJsonCounter,
    TooManyPassages,
    Utf8ByteEstimate,
)
from osbatch.chunking.tokens import MINILM_MAX_TOKENS, Span
from tests.unit.helpers import REPO

SAMPLE = REPO / "samples" / "python-modules" / "modules.jsonl"


@cache
def minilm() -> TokenizerJsonCounter:
    return TokenizerJsonCounter.from_file(packaged.sentence_transformers_folder() / "tokenizer.json")


def chunker(*algorithms: dict[str, object], counter: object = None, **options: object) -> Chunker:
    config = ChunkingConfig.model_validate({"algorithms": list(algorithms), **options})
    return Chunker(config, counter or minilm())  # type: ignore[arg-type]


def real_texts() -> list[str]:
    """Varied real text: module docs of the sample (reference layout, code, tables) and pydoc of others."""
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    sample = [records[i]["text"] for i in (0, 7, 23, 41)]
    return [
        *sample,
        pydoc.render_doc(pydoc, renderer=pydoc.plaintext),
        "Über naïve café — 東京の天気 😀 " * 300,
    ]


def assert_covers(text: str, passages: Sequence[Passage]) -> None:
    assert passages, "no passage"
    assert [(p.text, p.start, p.end) for p in passages] == [
        (text[p.start : p.end], p.start, p.end) for p in passages
    ]
    assert passages[0].start == 0
    assert passages[-1].end == len(text)
    # Each passage starts at or before the end of the one before: no character between them is dropped.
    assert all(later.start <= earlier.end for earlier, later in pairwise(passages))
    assert all(later.start > earlier.start for earlier, later in pairwise(passages))


@pytest.mark.parametrize("index", range(6))
def test_fixed_token_length_covers_real_text_within_minilms_limit(index: int) -> None:
    # Given real text and the default fixed_token_length with overlap, counted by MiniLM's own tokenizer
    text = real_texts()[index]
    split = chunker({"fixed_token_length": {"overlap_rate": 0.2, "max_chunk_limit": 1000}})
    # When it is chunked
    passages = list(split.passages(text))
    # Then every character is in a passage at its exact offsets, and the model reads each passage whole
    assert_covers(text, passages)
    counts = [minilm().count(passage.text) for passage in passages]
    assert max(counts) <= MINILM_MAX_TOKENS
    # And passages are full, not needlessly short: all but the last hold most of the limit
    assert min(counts[:-1], default=MINILM_MAX_TOKENS) >= MINILM_MAX_TOKENS * 0.8


def test_the_default_token_limit_is_what_minilm_reads() -> None:
    # Given the default fixed_token_length (text_chunking's 384) with the MiniLM tokenizer
    split = chunker({"fixed_token_length": {}})
    text = real_texts()[1]
    # When a long text is chunked
    passages = list(split.passages(text))
    # Then passages are cut at 254 wordpieces, which with [CLS] and [SEP] are the 256 the model reads
    assert max(minilm().count(passage.text) for passage in passages) == MINILM_MAX_TOKENS


def test_overlap_repeats_the_share_of_tokens_asked_for() -> None:
    # Given a token limit of 100 and overlap_rate 0.2
    split = chunker(
        {"fixed_token_length": {"token_limit": 100, "overlap_rate": 0.2, "max_chunk_limit": 1000}}
    )
    text = real_texts()[2]
    # When the text is chunked
    passages = list(split.passages(text))
    # Then each passage starts inside the one before, and the shared text is about 20 of its tokens
    shared = [minilm().count(text[later.start : earlier.end]) for earlier, later in pairwise(passages)]
    assert all(later.start < earlier.end for earlier, later in pairwise(passages))
    assert 15 <= sorted(shared)[len(shared) // 2] <= 25


def test_without_overlap_passages_only_touch() -> None:
    split = chunker({"fixed_token_length": {"token_limit": 64, "max_chunk_limit": 1000}})
    text = real_texts()[3]
    passages = list(split.passages(text))
    # Then the passages tile the text exactly
    assert "".join(passage.text for passage in passages) == text


def test_delimiter_then_tokens_cuts_paragraphs_first() -> None:
    # Given paragraphs of different lengths and a chain: "\n\n", then at most 40 tokens
    paragraphs = ["Short one.", "word " * 100, "Another short paragraph about files."]
    text = "\n\n".join(paragraphs)
    split = chunker({"delimiter": {}}, {"fixed_token_length": {"token_limit": 40}})
    # When chunked
    passages = list(split.passages(text))
    # Then no passage runs across a paragraph break, the long paragraph is cut by tokens, and nothing is lost
    assert_covers(text, passages)
    assert all("\n\n" not in passage.text.rstrip("\n") for passage in passages)
    assert passages[0].text == "Short one.\n\n"
    assert passages[-1].text == "Another short paragraph about files."
    assert len(passages) == 2 + 3  # 100 words at 40 tokens a passage


def test_blank_pieces_join_their_neighbour_instead_of_becoming_passages() -> None:
    # Given runs of delimiters and whitespace around two paragraphs
    text = "\n\n\n\nfirst\n\n  \n\n\n\nsecond\n\n \n\n"
    # When split on "\n\n" alone (utf-8 bytes counting, so no token step is required)
    passages = list(chunker({"delimiter": {}}, counter=Utf8ByteEstimate()).passages(text))
    # Then there are two passages, together the whole text
    assert [passage.text.strip() for passage in passages] == ["first", "second"]
    assert "".join(passage.text for passage in passages) == text


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \n"])
def test_empty_or_whitespace_text_is_not_chunkable(text: str) -> None:
    # When blank text is chunked
    outcome = chunker({"fixed_token_length": {}}).chunk(text)
    # Then it is refused with a reason for the dead letter
    assert isinstance(outcome, BlankText)
    assert outcome.reason == "the text is empty or only whitespace: there is nothing to embed"


def test_text_of_only_delimiters_is_not_chunkable() -> None:
    # Given a delimiter that is not whitespace, and a text of nothing else
    split = chunker({"delimiter": {"delimiter": "----"}}, {"fixed_token_length": {}})
    # When chunked
    outcome = split.chunk("--------\n----  ")
    # Then the reason names the delimiter
    assert isinstance(outcome, OnlyDelimiters)
    assert outcome.reason == "the text holds nothing but the chunking delimiter ('----') and whitespace"


def test_a_record_needing_more_than_max_chunk_limit_passages_is_refused_naming_the_limit() -> None:
    # Given at most 5 passages of at most 20 tokens
    split = chunker({"fixed_token_length": {"token_limit": 20, "max_chunk_limit": 5}})
    # When a text needs more
    outcome = split.chunk("word " * 200)
    # Then it is refused, and the reason says which limit and how to get the record in
    assert isinstance(outcome, TooManyPassages)
    assert outcome.limit == 5
    assert "fixed_token_length's max_chunk_limit of 5 passages" in outcome.reason
    assert "append_to_last_chunk" in outcome.reason


def test_exactly_max_chunk_limit_passages_is_fine() -> None:
    split = chunker({"fixed_token_length": {"token_limit": 10, "max_chunk_limit": 3}})
    outcome = split.chunk("word " * 30)
    assert isinstance(outcome, list)
    assert len(outcome) == 3


def test_append_to_last_chunk_puts_the_rest_in_the_last_passage_as_text_chunking_does() -> None:
    # Given the processor's overflow behaviour asked for explicitly
    split = chunker(
        {"fixed_token_length": {"token_limit": 20, "max_chunk_limit": 5}},
        on_max_chunk_limit="append_to_last_chunk",
    )
    text = "word " * 200
    # When a text needs more than 5 passages
    passages = split.chunk(text)
    # Then there are 5, the last running to the end of the text
    assert isinstance(passages, list)
    assert len(passages) == 5
    assert passages[-1].end == len(text)
    assert_covers(text, passages)


def test_a_100000_character_word_is_split_within_the_token_limit() -> None:
    # Given a "word" with no space, for MiniLM and for the byte estimate
    text = "x" * 50_000 + "日本語" * 16_000 + "y" * 2_000
    for counter in (minilm(), Utf8ByteEstimate()):
        split = chunker(
            {"fixed_token_length": {"token_limit": 200, "max_chunk_limit": 10_000}}, counter=counter
        )
        # When chunked
        passages = list(split.passages(text))
        # Then every passage is within the limit when counted alone, and nothing is lost
        assert_covers(text, passages)
        assert max(counter.count(passage.text) for passage in passages) <= 200


def test_a_50_mb_line_is_refused_after_max_chunk_limit_passages_without_tokenizing_it_all() -> None:
    # Given a 50 MB line of prose with the default limits
    text = "The quick brown fox jumps over the lazy dog. " * (50_000_000 // 45)
    tokenized: list[int] = []

    class Counting(TokenizerJsonCounter):
        def spans(self, text: str) -> Sequence[Span]:
            tokenized.append(len(text))
            return super().spans(text)

    counter = Counting.from_file(packaged.sentence_transformers_folder() / "tokenizer.json")
    # When chunked
    outcome = chunker({"delimiter": {}}, {"fixed_token_length": {}}, counter=counter).chunk(text)
    # Then it is refused for needing more than 100 passages, having read only about its first 100 passages
    assert isinstance(outcome, TooManyPassages)
    assert sum(tokenized) < 200_000


class BytePieces:
    """A byte-level tokenizer's shape: a non-ASCII character is several tokens with the same offsets."""

    max_tokens = 8_000

    def spans(self, text: str) -> Sequence[Span]:
        return [(i, i + 1) for i, char in enumerate(text) for _ in char.encode()]

    def count(self, text: str) -> int:
        return len(text.encode())


def test_tokens_sharing_offsets_neither_loop_nor_overflow() -> None:
    # Given a tokenizer that gives one character several tokens
    text = "naïve 東京 😀 " * 500
    split = chunker(
        {"fixed_token_length": {"token_limit": 50, "overlap_rate": 0.5, "max_chunk_limit": 10_000}},
        counter=BytePieces(),
    )
    # When chunked
    passages = list(split.passages(text))
    # Then each passage holds at most 50 of its tokens and the text is covered
    assert_covers(text, passages)
    assert max(len(passage.text.encode()) for passage in passages) <= 50


def test_the_byte_estimate_never_counts_fewer_tokens_than_utf8_bytes() -> None:
    # Given text in several scripts, chunked by the estimate used for Titan and OpenAI
    text = real_texts()[5]
    passages = list(
        chunker(
            {"fixed_token_length": {"token_limit": 300, "max_chunk_limit": 1000}}, counter=Utf8ByteEstimate()
        ).passages(text)
    )
    # Then no passage has more UTF-8 bytes than the limit (every byte-level BPE token covers >= 1 byte)
    assert_covers(text, passages)
    assert max(len(passage.text.encode()) for passage in passages) <= 300


def test_not_chunkable_is_a_value_error_with_its_reason() -> None:
    # The caller catches one type and dead-letters with .reason
    with pytest.raises(NotChunkable, match="nothing to embed"):
        list(chunker({"fixed_token_length": {}}).passages(" "))
