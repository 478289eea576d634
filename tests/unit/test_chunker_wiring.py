"""chunker_for: each pipeline's Chunker, counting with the tokenizer its config names."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.model.packaged import sentence_transformers_folder
from osbatch.chunking import TokenizerJsonCounter
from osbatch.config import parse_pipeline
from osbatch.handlers.wiring import SettingsError, chunker_for
from tests.unit.helpers import chunking_pipeline_dict, pipeline_dict

CHUNKING = {"algorithms": [{"fixed_token_length": {"token_limit": 50, "max_chunk_limit": 1000}}]}
TOKENIZER = sentence_transformers_folder() / "tokenizer.json"


def chunking_pipeline(**chunking: object):  # type: ignore[no-untyped-def]
    return parse_pipeline(chunking_pipeline_dict({**CHUNKING, **chunking}), "test")


def test_a_pipeline_without_chunking_has_no_chunker() -> None:
    assert chunker_for(parse_pipeline(pipeline_dict(), "test"), TOKENIZER) is None


def test_a_minilm_pipeline_counts_with_the_shipped_tokenizer() -> None:
    # Given a SageMaker pipeline chunking at 50 MiniLM tokens, and the tokenizer shipped with the code
    chunker = chunker_for(chunking_pipeline(), TOKENIZER)
    assert chunker is not None
    text = "Batch inference embeds a collection of documents offline, one passage at a time. " * 40

    # When a long text is chunked
    passages = chunker.chunk(text)

    # Then every passage holds at most 50 of the model's own wordpieces, and together they cover the text
    assert isinstance(passages, list) and len(passages) > 1
    counter = TokenizerJsonCounter.from_file(TOKENIZER)
    assert max(counter.count(passage.text) for passage in passages) <= 50
    assert passages[0].start == 0 and passages[-1].end == len(text)


def test_a_missing_tokenizer_is_a_deployment_error_that_says_so(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"tokenizer\.json"):
        chunker_for(chunking_pipeline(), tmp_path / "minilm-tokenizer.json")


def test_a_byte_estimate_pipeline_needs_no_tokenizer_file(tmp_path: Path) -> None:
    # Given a pipeline that counts UTF-8 bytes, and no tokenizer file at all
    chunker = chunker_for(chunking_pipeline(tokenizer="utf8-bytes"), tmp_path / "absent.json")
    assert chunker is not None

    # Then passages are cut at 50 bytes
    passages = chunker.chunk("é" * 60)
    assert isinstance(passages, list)
    assert [len(passage.text.encode()) for passage in passages] == [50, 50, 20]
