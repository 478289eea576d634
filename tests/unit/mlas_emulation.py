"""What onnxruntime's int8 GEMM computes on each CPU class, in numpy, for onnx's reference evaluator.

The derived graph's products (com.microsoft MatMulIntegerToFloat) run on MLAS kernels picked from the CPU's
features (local.model.cpu). Some of those kernels are not exact: the U8S8 kernels of AVX2 and of AVX-512
without VNNI multiply with VPMADDUBSW, which adds each pair of uint8 x int8 products into a *saturating*
int16 (255 * 127 * 2 = 64770 > 32767), then VPMADDWD-by-ones adds the pairs into int32 exactly
(onnxruntime/core/mlas/lib/x86_64/QgemmU8X8KernelAvx2.S, MultiplyAccumulateRowU8S8Avx2;
QgemmU8X8KernelAvx512Core.S, MultiplyAccumulateCellU8S8Avx512Core). The pairs are k = (2j, 2j+1): A is
packed four consecutive k to a DWORD and B four consecutive k per column, and K is zero-padded.

This module replays that arithmetic on raw uint8 A and int8 B (zero points are applied afterwards from row
and column sums, as MLAS does), so a test can show on any machine what a graph computes on a CPU it does not
have. Every other kernel (VNNI's VPDPBUSD(S), AMX, U8U8's 16-bit widening with VPMADDWD, SSE) sums into
int32 without an int16 step, so it is exact, and so is this module for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

INT16_MIN, INT16_MAX = -32768, 32767
U8_MAX = 255
MS_DOMAIN = "com.microsoft"


def exact_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer a @ b, exactly (float64 holds every int8 GEMM sum of this size exactly: < 2^53)."""
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def saturating_pair_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uint8 a [M, K] @ int8 b [K, N] as VPMADDUBSW + VPMADDWD(1) compute it: each k pair clipped to int16."""
    if a.dtype != np.uint8 or b.dtype != np.int8:
        raise TypeError(f"VPMADDUBSW multiplies uint8 by int8, not {a.dtype} by {b.dtype}")
    depth = a.shape[1]
    if depth % 2:  # MLAS pads K with zeros
        a = np.pad(a, ((0, 0), (0, 1)))
        b = np.pad(b, ((0, 1), (0, 0)))
    result = exact_product(a, b)
    even, odd = b[0::2].astype(np.int64), b[1::2].astype(np.int64)
    # A pair can leave int16 only if its two weights share a sign and 255 * (|even| + |odd|) > 32767; only
    # those (a few percent) are computed again, pair by pair, to find what saturation took off.
    risky = (even * odd >= 0) & (U8_MAX * (np.abs(even) + np.abs(odd)) > INT16_MAX)
    pairs, columns = np.nonzero(risky)
    if pairs.size == 0:
        return result
    order = np.argsort(columns, kind="stable")
    pairs, columns = pairs[order], columns[order]
    a64 = a.astype(np.int64)
    sums = a64[:, 2 * pairs] * even[pairs, columns] + a64[:, 2 * pairs + 1] * odd[pairs, columns]
    excess = sums - np.clip(sums, INT16_MIN, INT16_MAX)
    starts = np.flatnonzero(np.r_[True, columns[1:] != columns[:-1]])
    result[:, columns[starts]] -= np.add.reduceat(excess, starts, axis=1)
    return result


class _MatMulIntegerToFloat(OpRun):
    """com.microsoft MatMulIntegerToFloat: (A - a_zero) @ (B - b_zero) * a_scale * b_scale (+ bias)."""

    op_domain = MS_DOMAIN
    saturating_u8s8: ClassVar[bool] = False

    def _run(
        self,
        a: np.ndarray,
        b: np.ndarray,
        a_scale: np.ndarray,
        b_scale: np.ndarray,
        a_zero_point: np.ndarray | None = None,
        b_zero_point: np.ndarray | None = None,
        bias: np.ndarray | None = None,
    ) -> tuple[np.ndarray]:
        depth = b.shape[0]
        rows = a.reshape(-1, depth)
        if self.saturating_u8s8 and b.dtype == np.int8:
            raw = saturating_pair_product(rows, b)
        else:
            raw = exact_product(rows, b)
        # MLAS multiplies raw values, then corrects for the zero points with row and column sums (exact).
        a_zero = np.int64(0) if a_zero_point is None else np.asarray(a_zero_point, np.int64).reshape(-1)[0]
        b_zero = (
            np.zeros(b.shape[1], np.int64) if b_zero_point is None else np.asarray(b_zero_point, np.int64)
        )
        b_zero = np.broadcast_to(b_zero.reshape(-1), (b.shape[1],))
        row_sums = rows.astype(np.int64).sum(axis=1, keepdims=True)
        column_sums = b.astype(np.int64).sum(axis=0)
        raw = raw - a_zero * column_sums - row_sums * b_zero + depth * a_zero * b_zero
        scale = np.asarray(a_scale, np.float32).reshape(-1, 1) if np.size(a_scale) > 1 else a_scale
        y = raw.astype(np.float32) * np.asarray(b_scale, np.float32) * np.asarray(scale, np.float32)
        if bias is not None:
            y = y + bias
        return (y.reshape((*a.shape[:-1], b.shape[1])).astype(np.float32),)


class BiasGelu(OpRun):
    """com.microsoft BiasGelu: GELU(x + bias) with erf, as the exported graph computes it."""

    op_domain = MS_DOMAIN

    def __init__(self, onnx_node: onnx.NodeProto, run_params: dict[str, Any]) -> None:
        super().__init__(onnx_node, run_params)
        from math import erf

        self._erf = np.vectorize(erf, otypes=[np.float64])

    def _run(self, x: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray]:
        z = (x + bias).astype(np.float64)
        return ((0.5 * z * (1.0 + self._erf(z / np.sqrt(2.0)))).astype(np.float32),)


def _per_axis(value: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """A scale or zero point, scalar or 1-D along axis, shaped to broadcast against x."""
    if np.size(value) == 1:
        return np.asarray(value).reshape(())
    shape = [1] * x.ndim
    shape[axis] = -1
    return np.asarray(value).reshape(shape)


class QuantizeLinear(OpRun):
    """QuantizeLinear-13 (onnx's reference has only 19+): saturate(round_half_even(x / scale) + zero)."""

    op_domain = ""

    def _run(
        self, x: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int = 1, **later_opsets: Any
    ) -> tuple[np.ndarray]:
        axis = axis % x.ndim
        info = np.iinfo(zero.dtype)
        q = np.rint(x / _per_axis(scale, x, axis)) + _per_axis(zero, x, axis).astype(np.float32)
        return (np.clip(q, info.min, info.max).astype(zero.dtype),)


class DequantizeLinear(OpRun):
    """DequantizeLinear-13: (x - zero) * scale."""

    op_domain = ""

    def _run(
        self, x: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int = 1, **later_opsets: Any
    ) -> tuple[np.ndarray]:
        axis = axis % x.ndim
        shifted = x.astype(np.float32) - _per_axis(zero, x, axis).astype(np.float32)
        return ((shifted * _per_axis(scale, x, axis)).astype(np.float32),)


def evaluator(model: onnx.ModelProto, *, saturating_u8s8: bool) -> ReferenceEvaluator:
    """onnx's reference evaluator for model, its int8 products computed as a CPU class's kernels would."""
    product = type("MatMulIntegerToFloat", (_MatMulIntegerToFloat,), {"saturating_u8s8": saturating_u8s8})
    return ReferenceEvaluator(model, new_ops=[product, BiasGelu, QuantizeLinear, DequantizeLinear])


@dataclass(frozen=True)
class _Port:
    name: str
    shape: list[int | str]


class EmulatedSession:
    """The slice of onnxruntime.InferenceSession the embedder uses, run by evaluator() instead."""

    def __init__(self, model: onnx.ModelProto, *, saturating_u8s8: bool) -> None:
        self._evaluator = evaluator(model, saturating_u8s8=saturating_u8s8)
        self._inputs = [_port(value) for value in model.graph.input]
        self._outputs = [_port(value) for value in model.graph.output]

    def get_inputs(self) -> list[_Port]:
        return self._inputs

    def get_outputs(self) -> list[_Port]:
        return self._outputs

    def run(self, output_names: list[str] | None, feeds: dict[str, Any]) -> Sequence[Any]:
        return list(self._evaluator.run(output_names, feeds))


def _port(value: onnx.ValueInfoProto) -> _Port:
    dims = value.type.tensor_type.shape.dim
    return _Port(value.name, [dim.dim_value if dim.HasField("dim_value") else dim.dim_param for dim in dims])
