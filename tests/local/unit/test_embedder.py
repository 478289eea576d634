"""The local MiniLM must give the vectors sentence-transformers gives, batch by batch and text by text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from local.model import Embedder, OnnxSentenceEmbedder, load_embedder, packaged
from local.model.embedder import open_session

REFERENCE = Path(__file__).resolve().parents[2] / "fixtures" / "minilm_reference.jsonl"


def reference_rows() -> list[dict]:
    return [json.loads(line) for line in REFERENCE.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_reference_vector_matches_sentence_transformers(minilm: Embedder) -> None:
    # Given the 20 texts embedded by sentence-transformers in fp32 (empty, Unicode, one over 256 tokens),
    # and the embedder default() builds, which runs the packaged graph as shipped
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

    # When it is loaded from the folder
    embedder = OnnxSentenceEmbedder.from_folder(tmp_path, threads=1)

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


# onnxruntime's operators that multiply integers (its contrib operators, documented in
# docs/ContribOperators.md of the onnxruntime repository, and the ONNX standard's MatMulInteger,
# ConvInteger, QLinear*): MLAS runs their products on kernels picked per CPU, some of which saturate.
# None may run, or the vectors would depend on the CPU.
INTEGER_PRODUCTS = {
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "DynamicQuantizeLinear",
    "MatMulNBits",
    "ConvInteger",
    "QGemm",
    "QAttention",
    "QEmbedLayerNormalization",
    "DynamicQuantizeLSTM",
}
FLOAT_PRODUCTS = {"MatMul", "FusedMatMul", "Gemm"}


def test_onnxruntime_runs_every_product_of_the_packaged_graph_in_float(tmp_path: Path) -> None:
    # Given the packaged graph, opened as the embedder opens it, with onnxruntime writing out the graph
    # it runs after its own optimizations (fusions, constant folding of the int8 weights' Cast * scale)
    optimized = tmp_path / "optimized.onnx"
    open_session(packaged.onnx_model_path(), threads=1, optimized_to=optimized)

    # When that graph's nodes are read
    graph = onnx.load(str(optimized)).graph
    operators = Counter(node.op_type for node in graph.node)

    # Then no integer product is left for a CPU-specific kernel
    assert not INTEGER_PRODUCTS & set(operators), operators
    assert not [op for op in operators if op.startswith("QLinear") or op.startswith("QOrdered")], operators
    # and the 36 weight products of the 6 layers (Q, K, V, attention output, FFN in, FFN out) all read fp32
    # weights: the int8 ones were turned back into fp32 once, at load
    weights = {tensor.name: tensor for tensor in graph.initializer}
    weight_products = [
        weights[name]
        for node in graph.node
        if node.op_type in FLOAT_PRODUCTS
        for name in node.input
        if name in weights and len(weights[name].dims) == 2
    ]
    assert len(weight_products) >= 6 * 6
    assert {onnx.TensorProto.DataType.Name(weight.data_type) for weight in weight_products} == {"FLOAT"}


def test_default_runs_the_packaged_graph_without_deriving_or_caching_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cache folder of our own
    monkeypatch.setenv("OSBATCH_CACHE", str(tmp_path))

    # When the default model is loaded and embeds a text
    embedder = OnnxSentenceEmbedder.default(threads=1)
    vector = embedder.embed(["what is amber"])

    # Then it wrote nothing: no graph of its own, the packaged one is read where pip put it
    assert list(tmp_path.iterdir()) == []
    # and it gives what a session on the packaged file gives
    direct = OnnxSentenceEmbedder.from_files(
        packaged.onnx_model_path(), packaged.sentence_transformers_folder() / "tokenizer.json", threads=1
    )
    np.testing.assert_array_equal(vector, direct.embed(["what is amber"]))
