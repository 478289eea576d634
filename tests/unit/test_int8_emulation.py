"""The int8 graphs' arithmetic on CPUs this machine is not: onnx's reference evaluator, MLAS emulated.

tests.unit.mlas_emulation computes MatMulIntegerToFloat either exactly (VNNI, AMX, every U8U8 kernel) or as
AVX2 / AVX-512-without-VNNI U8S8 kernels do (pairs of products saturated to int16). Nothing here depends on
the CPU the tests run on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from local.model import packaged, quantize, variant
from local.model.embedder import OnnxSentenceEmbedder, configured_tokenizer
from tests.unit import mlas_emulation
from tests.unit.cpu_classes import HASWELL, SKYLAKE_SP, x86

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference.jsonl"
LONG_TEXT_TOKENS = 256  # the 400-word reference text, cut at max_seq_length


def reference_rows() -> list[dict]:
    return [json.loads(line) for line in REFERENCE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def graphs() -> dict[bool, onnx.ModelProto]:
    """unsigned_weights -> the derived graph, as default() would cache it."""
    return {
        unsigned: quantize.derive(onnx.load(str(packaged.onnx_model_path())), unsigned_weights=unsigned)
        for unsigned in (False, True)
    }


def emulated(graph: onnx.ModelProto, *, saturating_u8s8: bool) -> OnnxSentenceEmbedder:
    reference = packaged.sentence_transformers_folder()
    tokenizer, pad_id = configured_tokenizer(reference / "tokenizer.json", 256)
    session = mlas_emulation.EmulatedSession(graph, saturating_u8s8=saturating_u8s8)
    return OnnxSentenceEmbedder(session, tokenizer, pad_id=pad_id)


def cosines(embedder: OnnxSentenceEmbedder, rows: list[dict]) -> dict[str, float]:
    expected = np.array([row["embedding"] for row in rows], dtype=np.float32)
    actual = embedder.embed([row["text"] for row in rows])
    values = (actual * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    return {row["text"]: float(value) for row, value in zip(rows, values, strict=True)}


def test_saturating_pair_product_is_what_vpmaddubsw_computes() -> None:
    # Given one row of 255s against int8 columns: two 127s (each pair saturates: 64770 -> 32767),
    # 127 and -127 (never saturates), and small weights (exact)
    a = np.full((1, 4), 255, np.uint8)
    b = np.array([[127, 127, 3], [127, -127, 4], [127, 127, 5], [127, -127, 6]], np.int8)

    # When multiplied as the AVX2 U8S8 kernel does
    product = mlas_emulation.saturating_pair_product(a, b)

    # Then each k pair (0, 1), (2, 3) was clipped to int16 before the int32 sum, and only there
    assert product.tolist() == [[2 * 32767, 0, 255 * 18]]
    assert mlas_emulation.exact_product(a, b).tolist() == [[255 * 127 * 4, 0, 255 * 18]]


def test_emulated_avx2_reproduces_the_reported_failure_of_the_int8_weight_graph(
    graphs: dict[bool, onnx.ModelProto],
) -> None:
    # Given the int8-weight (U8S8) graph and all 20 reference texts
    rows = reference_rows()

    # When it runs with AVX2's saturating U8S8 arithmetic, and the long text with exact arithmetic (VNNI)
    on_avx2 = cosines(emulated(graphs[False], saturating_u8s8=True), rows)
    long_row = max(rows, key=lambda row: len(row["text"]))
    on_vnni = cosines(emulated(graphs[False], saturating_u8s8=False), [long_row])

    # Then AVX2 loses the 400-word text (reported on an AVX2 EPYC: 0.9751, mean of all 20: 0.9962) while
    # exact arithmetic keeps it: the emulation reproduces the saturation, and only the saturation
    long_text = long_row["text"]
    assert on_avx2[long_text] < 0.985, on_avx2[long_text]
    assert on_vnni[long_text] >= 0.99, on_vnni[long_text]
    assert sorted(on_avx2, key=on_avx2.__getitem__)[0] == long_text


@pytest.mark.parametrize("flags", [HASWELL, SKYLAKE_SP], ids=["avx2", "avx512-without-vnni"])
def test_the_variant_chosen_for_a_cpu_without_vnni_matches_every_reference_vector_there(
    flags: str, graphs: dict[bool, onnx.ModelProto]
) -> None:
    # Given a CPU without VNNI, whose products the probe also sees through the emulation
    def probe(unsigned: bool) -> bool:
        return variant.products_are_exact(
            unsigned, lambda model: mlas_emulation.EmulatedSession(model, saturating_u8s8=True)
        )

    chosen = variant.choose(x86(flags), exact_here=probe)
    assert chosen is not variant.GraphVariant.SHIPPED

    # When its graph embeds every reference text with that CPU's arithmetic
    result = cosines(emulated(graphs[chosen.unsigned_weights], saturating_u8s8=True), reference_rows())

    # Then each vector is within 0.99 of sentence-transformers' (the empty and the 400-word text included)
    worst = min(result.items(), key=lambda item: item[1])
    assert worst[1] >= 0.99, worst
    assert "" in result


def test_uint8_weights_compute_what_int8_weights_compute_exactly(graphs: dict[bool, onnx.ModelProto]) -> None:
    # Given texts short and long, and both weight forms under exact arithmetic
    texts = ["what is amber", "", " ".join(["river"] * 300)]

    # When each form embeds them
    signed = emulated(graphs[False], saturating_u8s8=False).embed(texts)
    unsigned = emulated(graphs[True], saturating_u8s8=False).embed(texts)

    # Then the vectors are the same: (w + 128) with zero point 128 loses nothing
    np.testing.assert_allclose(unsigned, signed, atol=1e-6)


def test_the_probe_sees_saturation_through_the_emulation() -> None:
    # Given emulated AVX2 and emulated VNNI arithmetic
    def runner(saturating: bool):  # type: ignore[no-untyped-def]
        return lambda model: mlas_emulation.EmulatedSession(model, saturating_u8s8=saturating)

    # When / Then the probe tells them apart for int8 weights, and finds uint8 weights exact on both
    assert not variant.products_are_exact(False, runner(saturating=True))
    assert variant.products_are_exact(False, runner(saturating=False))
    assert variant.products_are_exact(True, runner(saturating=True))
