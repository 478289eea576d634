"""The local MiniLM must give the vectors sentence-transformers gives, batch by batch and text by text."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from local.model import Embedder, OnnxSentenceEmbedder, load_embedder, packaged, quantize, variant

REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "minilm_reference.jsonl"


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    # What local mode uses: OnnxSentenceEmbedder.default(), i.e. the int8 rewrite of the packaged graph in
    # the form local.model.variant chose for this CPU (tests/unit/test_int8_emulation.py covers the others).
    return load_embedder()


def reference_rows() -> list[dict]:
    return [json.loads(line) for line in REFERENCE.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_reference_vector_matches_sentence_transformers(minilm: Embedder) -> None:
    # Given the 20 texts embedded by sentence-transformers in fp32 (empty, Unicode, one over 256 tokens),
    # and the embedder default() builds, which runs the int8 graph whose products are exact on this CPU
    rows = reference_rows()
    expected = np.array([row["embedding"] for row in rows], dtype=np.float32)
    assert len(rows) == 20

    # When the local model embeds them in one call
    actual = minilm.embed([row["text"] for row in rows])

    # Then each vector points the same way: cosine >= 0.99 per vector, not just on average
    cosines = (actual * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    worst = {rows[i]["text"][:40]: round(float(cosines[i]), 4) for i in np.argsort(cosines)[:3]}
    assert cosines.min() >= 0.99, f"lowest cosines: {worst}"


def test_vectors_are_float32_unit_length_and_384_wide(minilm: Embedder) -> None:
    # Given a few texts
    texts = ["hello world", "", "Ünïcödé 東京 🚀"]

    # When they are embedded
    vectors = minilm.embed(texts)

    # Then the shape, type and norm are what the Embedder protocol promises
    assert minilm.dimension == 384
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_length_sorted_batches_keep_the_callers_order(
    minilm: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given texts of very different lengths, in an order that length sorting would change,
    # and batches small enough that they span several
    texts = [
        "a much longer text about the history of the river and the town " * 3,
        "short",
        "mid length text",
        "",
        "another text of a middling sort of length",
    ]
    monkeypatch.setattr(minilm, "batch_tokens", 16)

    # When they are embedded together and one by one
    together = minilm.embed(texts)
    alone = np.vstack([minilm.embed([text]) for text in texts])

    # Then row i is text i either way: padding and sorting change nothing
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_text_past_256_tokens_is_truncated_like_sentence_transformers(minilm: Embedder) -> None:
    # Given a text well past 256 tokens, and the same text with more words after the cut
    long_text = " ".join(["river"] * 300)

    # When both are embedded
    first, second = minilm.embed([long_text, long_text + " mountain valley forest"])

    # Then the words after token 256 are ignored
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_no_texts_give_an_empty_matrix(minilm: Embedder) -> None:
    # Given / When nothing is embedded
    vectors = minilm.embed([])

    # Then the result still has the model's width
    assert vectors.shape == (0, 384)


def test_non_string_input_is_refused(minilm: Embedder) -> None:
    # Given / When / Then a number where a text should be is a caller error, named by position
    with pytest.raises(TypeError, match="text 1"):
        minilm.embed(["fine", 42])  # type: ignore[list-item]


def test_any_onnx_sentence_embedding_folder_loads(tmp_path: Path, minilm: Embedder) -> None:
    # Given a folder laid out like an ONNX export: onnx/model.onnx, tokenizer.json, sentence_bert_config.json
    reference = packaged.sentence_transformers_folder()
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").symlink_to(packaged.onnx_model_path())
    (tmp_path / "tokenizer.json").symlink_to(reference / "tokenizer.json")
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')

    # When it is loaded from the folder, through the same int8 rewrite as the default model
    embedder = OnnxSentenceEmbedder.from_folder(tmp_path, threads=1, int8=True)

    # Then it embeds like the packaged model, and honours the folder's max_seq_length
    text = "what is amber"
    np.testing.assert_allclose(embedder.embed([text]), minilm.embed([text]), atol=1e-5)
    long_text = " ".join(["river"] * 200)
    assert not np.allclose(embedder.embed([long_text]), minilm.embed([long_text]), atol=1e-4)


def test_folder_without_a_graph_is_a_clear_error(tmp_path: Path) -> None:
    # Given a folder with a tokenizer but no model.onnx
    (tmp_path / "tokenizer.json").symlink_to(packaged.sentence_transformers_folder() / "tokenizer.json")

    # When / Then loading it names what is missing
    with pytest.raises(FileNotFoundError, match=r"model\.onnx"):
        OnnxSentenceEmbedder.from_folder(tmp_path)


def test_loaded_embedders_are_shared_per_folder(tmp_path: Path) -> None:
    # Given an ONNX folder (links to the packaged files)
    (tmp_path / "model.onnx").symlink_to(packaged.onnx_model_path())
    (tmp_path / "tokenizer.json").symlink_to(packaged.sentence_transformers_folder() / "tokenizer.json")

    # When it is asked for twice (once by another spelling of the path), and the default once
    first = load_embedder(tmp_path)
    again = load_embedder(str(tmp_path / "."))
    default = load_embedder()

    # Then the folder is loaded once and is not confused with the packaged model
    assert first is again
    assert first is not default
    assert default is load_embedder(None)


def test_the_int8_graph_is_derived_once_then_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an empty cache, and a count of the rewrites actually run
    derivations: list[int] = []
    derive = quantize.derive

    def counting_derive(model: onnx.ModelProto, *, unsigned_weights: bool = False) -> onnx.ModelProto:
        derivations.append(1)
        return derive(model, unsigned_weights=unsigned_weights)

    monkeypatch.setattr(quantize, "derive", counting_derive)
    source = packaged.onnx_model_path()

    # When the derived graph is asked for twice
    first = quantize.derived_graph(source, tmp_path)
    written = first.stat().st_mtime_ns
    second = quantize.derived_graph(source, tmp_path)

    # Then the rewrite ran once, the second call reused the file untouched, and no temporary file is left
    assert derivations == [1]
    assert second == first
    assert second.stat().st_mtime_ns == written
    assert [path.name for path in tmp_path.iterdir()] == [first.name]
    # and the file is keyed by the source graph's content and the rewrite's version
    assert first.name.startswith(hashlib.sha256(source.read_bytes()).hexdigest())
    assert quantize.REWRITE_VERSION in first.name

    # When the rewrite's version changes
    monkeypatch.setattr(quantize, "REWRITE_VERSION", "next-version")
    third = quantize.derived_graph(source, tmp_path)

    # Then the graph is derived again, beside the old one
    assert derivations == [1, 1]
    assert third != first
    assert third.is_file()

    # When the uint8-weight form is asked for
    unsigned = quantize.derived_graph(source, tmp_path, unsigned_weights=True)

    # Then it is a graph of its own, whose products read uint8 weights with zero point 128
    assert derivations == [1, 1, 1]
    assert unsigned not in (first, third)
    graph = onnx.load(str(unsigned)).graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    products = [node for node in graph.node if node.op_type == "MatMulIntegerToFloat"]
    assert products
    for node in products:
        assert initializers[node.input[1]].data_type == onnx.TensorProto.UINT8
        assert onnx.numpy_helper.to_array(initializers[node.input[5]]) == 128


def test_default_runs_the_cached_int8_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cache folder of our own
    monkeypatch.setenv("OSBATCH_CACHE", str(tmp_path))

    # When the default model is loaded twice
    first = OnnxSentenceEmbedder.default(threads=1)
    cached = sorted((tmp_path / "model").iterdir())
    second = OnnxSentenceEmbedder.default(threads=1)

    # Then both run the one derived graph from the cache, in the form chosen for this machine
    assert first.variant is second.variant is variant.for_this_machine()
    assert first.variant is not variant.GraphVariant.SHIPPED  # U8U8 is exact on every x86-64 CPU
    assert len(cached) == 1
    assert cached[0].name.endswith(f"-{first.variant}.onnx")
    assert sorted((tmp_path / "model").iterdir()) == cached
    # whose weight products are int8: per layer Q, K and V as one GEMM, the attention output, FFN in and
    # FFN out (6 x 4), plus the second pass over each sequence's first row where a LayerNorm or the GELU
    # feeds the product (6 x 3), and in which no fp32 MatMul by a weight is left
    graph = onnx.load(str(cached[0])).graph
    assert sum(node.op_type == "MatMulIntegerToFloat" for node in graph.node) == 6 * 4 + 6 * 3
    constants = {tensor.name for tensor in graph.initializer}
    for node in graph.node:  # a tensor computed from constants only (Cast * scale) is a weight too
        if node.op_type in ("Cast", "Mul") and all(name in constants for name in node.input):
            constants.update(node.output)
    assert not [node.name for node in graph.node if node.op_type == "MatMul" and node.input[1] in constants]
    text = ["what is amber"]
    np.testing.assert_array_equal(first.embed(text), second.embed(text))
