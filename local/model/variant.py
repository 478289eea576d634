"""Which graph of the local MiniLM this machine runs: the fastest one whose products are exact here.

- u8s8: the int8 rewrite with int8 weights. Fastest where MLAS multiplies uint8 x int8 exactly (VNNI, AMX,
  or no AVX2); on AVX2 and on AVX-512 without VNNI its kernels saturate and a 400-word text drops to a
  cosine of 0.975 against sentence-transformers.
- u8u8: the same rewrite with the weights stored as uint8 + 128 (zero point 128). Exact on every x86-64
  kernel (local.model.cpu), so it gives u8s8-on-VNNI's vectors everywhere, a little slower.
- shipped: the packaged graph as it is (fp32 products), if even u8u8 is not exact here.

The choice takes both the kernel table (from the CPU's flags) and a probe: a tiny MatMulIntegerToFloat run
by this process's onnxruntime, on values where a saturating kernel must give a different answer. A variant is
used only if the table (where it applies) and the probe both say it is exact, so neither a flag that lies
(qemu-user shows the host's /proc/cpuinfo) nor an onnxruntime that changed its kernels can pick a wrong one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from local.model import cpu

logger = logging.getLogger(__name__)

MS_DOMAIN = "com.microsoft"
PROBE_DEPTH = 64  # K: 32 pairs per output, so saturation would lose half of every large product
PROBE_COLUMNS = 32  # N: two 16-column blocks of the AVX2 and AVX-512 kernels
PROBE_SEED = 11
PROBE_IR_VERSION = 8  # onnx may write newer IR versions than the pinned onnxruntime reads


class GraphVariant(StrEnum):
    U8S8 = "u8s8"
    U8U8 = "u8u8"
    SHIPPED = "shipped"

    @property
    def unsigned_weights(self) -> bool:
        return self is GraphVariant.U8U8


def _probe_operands(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 A [rows, K] and int8 B [K, N]: row 0 and column 0 at their extremes (255, 127), others random."""
    rng = np.random.default_rng(PROBE_SEED)
    b = rng.integers(-127, 128, size=(PROBE_DEPTH, PROBE_COLUMNS), dtype=np.int8)  # first: same for any rows
    a = rng.integers(0, 256, size=(rows, PROBE_DEPTH), dtype=np.uint8)
    a[0] = 255
    b[:, 0] = 127
    return a, b


def _probe_model(b: np.ndarray, unsigned_weights: bool) -> onnx.ModelProto:
    """Y = A @ B as MatMulIntegerToFloat, B a constant as in the derived graph (onnxruntime prepacks it)."""
    weights = (b.astype(np.int16) + 128).astype(np.uint8) if unsigned_weights else b
    initializers = [
        numpy_helper.from_array(weights, "b"),
        numpy_helper.from_array(np.ones(b.shape[1], np.float32), "b_scale"),
        numpy_helper.from_array(np.array(1.0, np.float32), "a_scale"),
        numpy_helper.from_array(np.array(0, np.uint8), "a_zero"),
    ]
    inputs = ["a", "b", "a_scale", "b_scale", "a_zero"]
    if unsigned_weights:
        initializers.append(numpy_helper.from_array(np.array(128, np.uint8), "b_zero"))
        inputs.append("b_zero")
    node = helper.make_node("MatMulIntegerToFloat", inputs, ["y"], domain=MS_DOMAIN)
    graph = helper.make_graph(
        [node],
        "int8_probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, ["m", b.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", b.shape[1]])],
        initializers,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS_DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=PROBE_IR_VERSION)


class Runner(Protocol):
    def run(self, output_names: list[str] | None, feeds: dict[str, Any]) -> Sequence[Any]: ...


def onnxruntime_runner(model: onnx.ModelProto) -> Runner:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def products_are_exact(
    unsigned_weights: bool, runner: Callable[[onnx.ModelProto], Runner] = onnxruntime_runner
) -> bool:
    """Whether uint8 x (u)int8 products come out exact, for one row and several.

    runner runs the probe graph: this process's onnxruntime by default, an emulated CPU in the tests.
    """
    _, b = _probe_operands(1)
    session = runner(_probe_model(b, unsigned_weights))
    for rows in (1, 8):  # one row may take a GEMV kernel, several the GEMM kernel
        a, b = _probe_operands(rows)
        expected = a.astype(np.int64) @ b.astype(np.int64)  # |values| < 2^21: exact in float32
        actual = np.asarray(session.run(["y"], {"a": a})[0])
        if not np.array_equal(actual, expected.astype(np.float32)):
            return False
    return True


def predicted(info: cpu.CpuInfo) -> GraphVariant | None:
    """The variant the kernel table calls for on info's CPU, or None where the table does not apply."""
    kernel = cpu.u8s8_kernel(info)
    if kernel is None:
        return None
    return GraphVariant.U8S8 if kernel.exact else GraphVariant.U8U8


def choose(info: cpu.CpuInfo, exact_here: Callable[[bool], bool] = products_are_exact) -> GraphVariant:
    """The fastest variant that the table (where it applies) and the probe exact_here both call exact."""
    table = predicted(info)
    candidates = [GraphVariant.U8U8] if table is GraphVariant.U8U8 else [GraphVariant.U8S8, GraphVariant.U8U8]
    for candidate in candidates:
        if exact_here(candidate.unsigned_weights):
            if table is not None and candidate is not table:
                logger.warning(
                    "%s: by these flags u8s8 products are exact, but they are not in this process "
                    "(flags that are not the CPUID it sees, or new onnxruntime kernels); using %s",
                    info.summary(),
                    candidate,
                )
            return candidate
    logger.warning("%s: no int8 product is exact here; running the shipped graph", info.summary())
    return GraphVariant.SHIPPED


@functools.cache
def for_this_machine() -> GraphVariant:
    """choose() for this machine, once per process (the kernels MLAS picked do not change while it runs)."""
    info = cpu.CpuInfo.of_this_machine()
    variant = choose(info)
    logger.info("%s: MiniLM runs the %s graph", info.summary(), variant)
    return variant
