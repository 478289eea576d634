"""Int8 matrix products for the local MiniLM: a graph rewrite, derived once and cached.

Why: the packaged graph stores its weights as int8 but turns them back into fp32 when loaded (Cast * scale),
so every linear layer runs as an fp32 MatMul, about 70% of the time. This rewrite runs those layers on
onnxruntime's int8 GEMM (com.microsoft MatMulIntegerToFloat) instead, on the very same int8 weights and
per-column scales, so no weight is re-quantized and the weights lose nothing more. Only the activations are
quantized, at run time, and how matters more than anything else (cosines against the sentence-transformers
fp32 reference, all 20 vectors; the packaged graph itself gets 0.9963):

- per tensor (onnxruntime.quantization's dynamic quantization): one scale for the whole batch, so a vector
  depends on the texts it is batched with, and 0.61-0.97 when every layer is quantized;
- per row (one scale per token, symmetric int8): each text stays independent of its batch, 0.978;
- per row, and the [CLS] row (position 0 of every sequence) quantized twice: 0.994. Position 0 carries
  activation outliers 100-600x the row's median (channel 99 after each LayerNorm, some GELU channels),
  which leave its other channels almost no levels. Where a LayerNorm or the GELU feeds a product, that row's
  residual is quantized and multiplied a second time and added back (ScatterND add), so the row is exact to
  about 16 bits for the price of one more row per sequence (the attention output has no such outliers);
- and the GELU output (the FFN's second product) shifted by +0.17, GELU's minimum, so it is quantized
  unsigned over its real range, twice as finely as symmetric; the shift times the weight column sums is
  taken off the bias: 0.996. This is what derive() builds.

Re-quantizing the dequantized weights per channel gives back exactly the shipped int8 weights (that is how
they were made), so fp32 weights (from_folder(..., int8=True)) go through the same path; per-tensor weights
would only lose accuracy. Two fusions onnxruntime does not find in the torch export come with it, for ~10%:
Q, K and V read the same input, so they run as one GEMM (one quantization) then a Split, and bias + erf GELU
become com.microsoft BiasGelu. Everything else in the graph is left as it is.

Two forms of the same products, because onnxruntime's int8 GEMM is not exact on every CPU
(local.model.cpu has the kernel table): with int8 weights (U8S8) the kernels of AVX2 and of AVX-512 without
VNNI saturate pairs of products to int16 (0.975 on a 400-word text); with the same weights stored as uint8
(+128, zero point 128: U8U8) every x86 kernel widens to int16 first or sums in int32, so it computes exactly
what U8S8 computes on a VNNI CPU. local.model.variant picks one for the machine.

The result is cached under cache_dir()/model/, keyed by the source graph's sha256, REWRITE_VERSION
(change the rewrite, bump the version) and the weights' form, and written to a temporary file then renamed,
so a second process never reads half a graph.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from local import paths

REWRITE_VERSION = "rowint8-v4"
MS_DOMAIN = "com.microsoft"
GELU_MIN = 0.17  # GELU(x) >= -0.16997, so GELU(x) + GELU_MIN >= 0
MIN_OPSET = 16  # ScatterND with reduction="add"


class UnsupportedGraph(ValueError):
    """Not a graph this rewrite knows: no input_ids, no MatMul by a constant weight, or an old opset."""


def derived_graph(source: Path, cache_root: Path | None = None, *, unsigned_weights: bool = False) -> Path:
    """The int8 rewrite of the ONNX graph at source: derived on first use, then read from the cache.

    unsigned_weights=True stores the weights as uint8 (U8U8 products, exact on every x86 CPU), else int8.
    """
    source = Path(source)
    cache_root = Path(cache_root) if cache_root is not None else paths.cache_dir() / "model"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    form = "u8u8" if unsigned_weights else "u8s8"
    target = cache_root / f"{digest}-{REWRITE_VERSION}-{form}.onnx"
    if target.is_file():
        return target
    data = derive(onnx.load(str(source)), unsigned_weights=unsigned_weights).SerializeToString()
    cache_root.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=cache_root, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600
        os.replace(temporary, target)  # atomic: readers see no file or the whole file
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


@dataclass
class _Linear:
    matmul: onnx.NodeProto
    weight: np.ndarray  # int8 [K, N]
    scale: np.ndarray  # float32 [N]
    weight_name: str  # an int8 initializer holding `weight`
    bias_add: onnx.NodeProto | None
    bias_name: str | None


def derive(model: onnx.ModelProto, *, unsigned_weights: bool = False) -> onnx.ModelProto:
    """Rewrite every MatMul by a constant [K, N] weight (int8 + Cast*scale, or fp32) into per-row int8.

    unsigned_weights=True feeds the products the same weights as uint8 + 128 with zero point 128.
    """
    return _Rewriter(model, unsigned_weights).run()


class _Rewriter:
    def __init__(self, model: onnx.ModelProto, unsigned_weights: bool = False) -> None:
        self.model = model
        self.unsigned_weights = unsigned_weights
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        if self.opset < MIN_OPSET:
            raise UnsupportedGraph(f"opset {self.opset} < {MIN_OPSET}")
        if "input_ids" not in {graph_input.name for graph_input in self.graph.input}:
            raise UnsupportedGraph("no input_ids input: cannot tell where each sequence starts")
        self.initializers = {tensor.name: tensor for tensor in self.graph.initializer}
        self.producers = {output: node for node in self.graph.node for output in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.emitted: list[onnx.NodeProto] = []
        self.quantized: dict[tuple[str, bool], tuple[str, str, str, str, str]] = {}
        self.residuals: dict[tuple[str, bool], tuple[str, str]] = {}
        self.shapes: dict[tuple[str, int], str] = {}
        self.rows: tuple[str, str] | None = None
        self.columns: dict[str, str] = {}
        self.count = 0

    # -- building blocks ------------------------------------------------------------------------------------

    def const(self, name: str, value: np.ndarray) -> str:
        if name not in self.initializers:
            tensor = numpy_helper.from_array(value, name)
            self.initializers[name] = tensor
            self.graph.initializer.append(tensor)
        return name

    def node(self, op: str, inputs: Iterable[str], domain: str = "", **attributes: Any) -> str:
        self.count += 1
        output = f"rowint8/{op}_{self.count}"
        node = helper.make_node(op, list(inputs), [output], name=output, domain=domain, **attributes)
        self.emitted.append(node)
        return output

    def reduce(self, op: str, x: str) -> str:
        """Per row of a [M, K] matrix, to [M]."""
        if self.opset >= 18:  # axes became an input
            return self.node(op, [x, self.const("rowint8/axis1", np.array([1], np.int64))], keepdims=0)
        return self.node(op, [x], axes=[1], keepdims=0)

    def symmetric(self, x: str) -> tuple[str, str, str]:
        """Per-row symmetric uint8 (zero point 128) of a [M, K] matrix: (q, scale [M], zero point [M])."""
        high = self.reduce("ReduceMax", x)
        low = self.node("Neg", [self.reduce("ReduceMin", x)])
        amax = self.node("Max", [high, low, self.const("rowint8/tiny", np.array(1e-12, np.float32))])
        scale = self.node("Mul", [amax, self.const("rowint8/inv127", np.array(1 / 127, np.float32))])
        zero = self.node(
            "Expand", [self.const("rowint8/u128", np.array(128, np.uint8)), self.node("Shape", [scale])]
        )
        return self.node("QuantizeLinear", [x, scale, zero], axis=0), scale, zero

    def column(self, vector: str) -> str:
        return self.node("Unsqueeze", [vector, self.const("rowint8/axis1", np.array([1], np.int64))])

    def first_rows(self) -> tuple[str, str]:
        """Row indexes of position 0 of every sequence in a [batch*sequence, K] matrix: ([B], [B, 1])."""
        if self.rows is None:
            shape = self.node("Shape", ["input_ids"])
            batch = self.node("Gather", [shape, self.const("rowint8/i0", np.array(0, np.int64))], axis=0)
            length = self.node("Gather", [shape, self.const("rowint8/i1", np.array(1, np.int64))], axis=0)
            total = self.node("Mul", [batch, length])
            rows = self.node("Range", [self.const("rowint8/zero", np.array(0, np.int64)), total, length])
            self.rows = (rows, self.column(rows))
        return self.rows

    def quantize(self, x: str, depth: int, shift: bool) -> tuple[str, str, str, str, str]:
        """x as [M, K] uint8, shared by all products reading x: (source, q, scale, zero point, A zero pt)."""
        key = (x, shift)
        if key not in self.quantized:
            flat = self.node(
                "Reshape", [x, self.const(f"rowint8/flat{depth}", np.array([-1, depth], np.int64))]
            )
            if shift:  # non-negative after the shift: unsigned over [0, max], zero point 0
                flat = self.node(
                    "Add", [flat, self.const("rowint8/gelu_min", np.array(GELU_MIN, np.float32))]
                )
                high = self.node(
                    "Max",
                    [self.reduce("ReduceMax", flat), self.const("rowint8/tiny", np.array(1e-12, np.float32))],
                )
                scale = self.node("Mul", [high, self.const("rowint8/inv255", np.array(1 / 255, np.float32))])
                u0 = self.const("rowint8/u0", np.array(0, np.uint8))
                zero = self.node("Expand", [u0, self.node("Shape", [scale])])
                q = self.node("QuantizeLinear", [flat, scale, zero], axis=0)
                self.quantized[key] = (flat, q, scale, zero, u0)
            else:
                q, scale, zero = self.symmetric(flat)
                self.quantized[key] = (
                    flat,
                    q,
                    scale,
                    zero,
                    self.const("rowint8/u128", np.array(128, np.uint8)),
                )
        return self.quantized[key]

    def first_row_residual(self, x: str, depth: int, shift: bool) -> tuple[str, str]:
        """What per-row int8 missed of each sequence's first row, quantized again: (q, scale [B, 1])."""
        key = (x, shift)
        if key not in self.residuals:
            flat, q, scale, zero, _ = self.quantize(x, depth, shift)
            rows, _ = self.first_rows()
            picked = [self.node("Gather", [tensor, rows], axis=0) for tensor in (flat, q, scale, zero)]
            approximation = self.node("DequantizeLinear", picked[1:], axis=0)
            residual_q, residual_scale, _ = self.symmetric(self.node("Sub", [picked[0], approximation]))
            self.residuals[key] = (residual_q, self.column(residual_scale))
        return self.residuals[key]

    def shape_like(self, x: str, width: int) -> str:
        """x's shape with the last dimension set to width."""
        if (x, width) not in self.shapes:
            leading = self.node("Shape", [x], start=0, end=-1)
            last = self.const(f"rowint8/width{width}", np.array([width], np.int64))
            self.shapes[(x, width)] = self.node("Concat", [leading, last], axis=0)
        return self.shapes[(x, width)]

    # -- the rewrite ----------------------------------------------------------------------------------------

    def weight(self, name: str) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(int8 [K, N], scale [N], int8 initializer name) of a constant weight, or None."""
        if name in self.initializers:  # plain fp32 weight: symmetric int8 per column
            weight = numpy_helper.to_array(self.initializers[name])
            if weight.ndim != 2 or weight.dtype != np.float32:
                return None
            scale = np.abs(weight).max(axis=0) / 127
            scale[scale == 0] = 1.0
            q = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
            return q, scale.astype(np.float32), self.const(f"{name}/rowint8_q", q)
        mul = self.producers.get(name)
        if mul is None or mul.op_type != "Mul":
            return None
        cast = self.producers.get(mul.input[0])
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in self.initializers:
            return None
        if mul.input[1] not in self.initializers:
            return None
        q = numpy_helper.to_array(self.initializers[cast.input[0]])
        scale = numpy_helper.to_array(self.initializers[mul.input[1]])
        if q.dtype != np.int8 or q.ndim != 2 or scale.size != q.shape[1]:
            return None
        return q, scale.reshape(-1).astype(np.float32), cast.input[0]

    def linears(self) -> list[_Linear]:
        found = []
        for node in self.graph.node:
            if node.op_type != "MatMul":
                continue
            weight = self.weight(node.input[1])
            if weight is None:
                continue
            bias_add = bias_name = None
            users = self.consumers.get(node.output[0], [])
            if len(users) == 1 and users[0].op_type == "Add":
                other = [name for name in users[0].input if name != node.output[0]]
                if len(other) == 1 and other[0] in self.initializers:
                    bias_add, bias_name = users[0], other[0]
            found.append(_Linear(node, *weight, bias_add=bias_add, bias_name=bias_name))
        return found

    def is_layer_norm_output(self, name: str) -> bool:
        node = self.producers.get(name)
        return node is not None and node.op_type in ("LayerNormalization", "SkipLayerNormalization")

    def is_gelu_output(self, name: str) -> bool:
        """x * 0.5 * (1 + erf(x / sqrt 2)) as exported by torch, or a fused Gelu."""
        node = self.producers.get(name)
        if node is None:
            return False
        if node.op_type in ("Gelu", "BiasGelu"):
            return True
        if node.op_type != "Mul":
            return False
        frontier, seen = list(node.input), 0
        while frontier and seen < 8:
            producer = self.producers.get(frontier.pop())
            seen += 1
            if producer is None:
                continue
            if producer.op_type == "Erf":
                return True
            frontier.extend(producer.input)
        return False

    def replace(self, group: list[_Linear]) -> list[onnx.NodeProto]:
        """The int8 product of the linears in group, which all read the same x (Q, K and V do: one GEMM)."""
        self.emitted = []
        x = group[0].matmul.input[0]
        depth = group[0].weight.shape[0]
        shift = len(group) == 1 and group[0].bias_add is not None and self.is_gelu_output(x)
        if len(group) == 1:
            weight_name, weight, weight_scale = group[0].weight_name, group[0].weight, group[0].scale
        else:
            weight = np.concatenate([linear.weight for linear in group], axis=1)
            weight_scale = np.concatenate([linear.scale for linear in group])
            weight_name = self.const(f"{group[0].weight_name}/rowint8_merged", weight)
        width = weight.shape[1]
        _, q, scale, _, a_zero = self.quantize(x, depth, shift)
        if scale not in self.columns:
            self.columns[scale] = self.column(scale)
        scales = self.const(f"{weight_name}/rowint8_scale", weight_scale)
        u128 = self.const("rowint8/u128", np.array(128, np.uint8))
        b, b_zero = weight_name, []
        if self.unsigned_weights:  # the same values, (w + 128) - 128: U8U8 kernels never saturate
            b = self.const(f"{weight_name}/rowint8_u8", (weight.astype(np.int16) + 128).astype(np.uint8))
            b_zero = [u128]
        product = self.node(
            "MatMulIntegerToFloat", [q, b, self.columns[scale], scales, a_zero, *b_zero], MS_DOMAIN
        )
        if shift or self.is_layer_norm_output(x):  # where the first row's outliers are
            residual_q, residual_scale = self.first_row_residual(x, depth, shift)
            correction = self.node(
                "MatMulIntegerToFloat", [residual_q, b, residual_scale, scales, u128, *b_zero], MS_DOMAIN
            )
            _, rows = self.first_rows()
            product = self.node("ScatterND", [product, rows, correction], reduction="add")
        if len(group) == 1:
            self.emitted.append(
                helper.make_node(
                    "Reshape",
                    [product, self.shape_like(x, width)],
                    [group[0].matmul.output[0]],
                    name=f"rowint8/{group[0].matmul.name}",
                )
            )
        else:  # add the biases, then cut the columns back into the outputs of the original bias Adds
            product = self.node("Reshape", [product, self.shape_like(x, width)])
            biases = [numpy_helper.to_array(self.initializers[str(linear.bias_name)]) for linear in group]
            merged_bias = self.const(f"{weight_name}/rowint8_bias", np.concatenate(biases).astype(np.float32))
            widths = self.const(
                f"{weight_name}/rowint8_split",
                np.array([linear.weight.shape[1] for linear in group], np.int64),
            )
            self.emitted.append(
                helper.make_node(
                    "Split",
                    [self.node("Add", [product, merged_bias]), widths],
                    [str(linear.bias_add.output[0]) for linear in group if linear.bias_add is not None],
                    name=f"rowint8/{group[0].matmul.name}/split",
                    axis=-1,
                )
            )
        if shift:  # (x + c) @ W = x @ W + c * colsum(W): take it off the bias
            linear = group[0]
            assert linear.bias_add is not None and linear.bias_name is not None
            bias = numpy_helper.to_array(self.initializers[linear.bias_name])
            column_sums = (linear.weight.astype(np.float32) * linear.scale).sum(axis=0)
            shifted = self.const(
                f"{linear.bias_name}/rowint8_shifted", (bias - GELU_MIN * column_sums).astype(np.float32)
            )
            for position, name in enumerate(linear.bias_add.input):
                if name == linear.bias_name:
                    linear.bias_add.input[position] = shifted
        return self.emitted

    def groups(self, linears: list[_Linear]) -> dict[str, list[_Linear]]:
        """First MatMul's name -> the linears run as one GEMM: those reading the same x, each with a bias."""
        by_input: dict[str, list[_Linear]] = {}
        for linear in linears:
            by_input.setdefault(linear.matmul.input[0], []).append(linear)
        groups = {}
        for same_input in by_input.values():
            mergeable = len(same_input) > 1 and all(linear.bias_add is not None for linear in same_input)
            for group in [same_input] if mergeable else [[linear] for linear in same_input]:
                groups[group[0].matmul.name] = group
        return groups

    def fuse_gelu(self, nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
        """Bias Add + the exported erf GELU (Div, Erf, Add, Mul, Mul) -> com.microsoft BiasGelu, one pass."""
        producers = {output: node for node in nodes for output in node.output}
        fused = []
        for node in nodes:
            x = self.gelu_input(node, producers)
            add = producers.get(x) if x is not None else None
            if add is None or add.op_type != "Add":
                fused.append(node)
                continue
            biases = [name for name in add.input if name in self.initializers]
            other = [name for name in add.input if name not in self.initializers]
            if len(biases) != 1 or len(other) != 1:
                fused.append(node)
                continue
            fused.append(
                helper.make_node(
                    "BiasGelu",
                    [other[0], biases[0]],
                    list(node.output),
                    name=f"{node.name}/rowint8",
                    domain=MS_DOMAIN,
                )
            )
        return fused

    def gelu_input(self, node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> str | None:
        """x if node computes x * (0.5 * (1 + erf(x / sqrt(2)))) (products in either order), else None."""
        if node.op_type != "Mul":
            return None

        def constant(name: str, value: float) -> bool:
            tensor = self.initializers.get(name)
            return (
                tensor is not None
                and numpy_helper.to_array(tensor).size == 1
                and bool(np.isclose(float(numpy_helper.to_array(tensor).reshape(-1)[0]), value, rtol=1e-6))
            )

        def other(mul: onnx.NodeProto | None, value: float) -> str | None:
            if mul is None or mul.op_type not in ("Mul", "Add", "Div"):
                return None
            names = list(mul.input)
            for position in (0, 1):
                if constant(names[position], value):
                    return names[1 - position]
            return None

        for x, rest in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
            half = producers.get(rest)
            one_plus = (
                producers.get(other(half, 0.5) or "") if half is not None and half.op_type == "Mul" else None
            )
            erf = (
                producers.get(other(one_plus, 1.0) or "")
                if one_plus is not None and one_plus.op_type == "Add"
                else None
            )
            if erf is None or erf.op_type != "Erf":
                continue
            div = producers.get(erf.input[0])
            if (
                div is not None
                and div.op_type == "Div"
                and div.input[0] == x
                and constant(div.input[1], 2**0.5)
            ):
                return x
        return None

    def run(self) -> onnx.ModelProto:
        groups = self.groups(self.linears())
        if not groups:
            raise UnsupportedGraph("no MatMul by a constant 2-D weight")
        merged_away = {
            str(linear.bias_add.name)
            for group in groups.values()
            if len(group) > 1
            for linear in group
            if linear.bias_add is not None
        }
        nodes: list[onnx.NodeProto] = []
        for node in list(self.graph.node):
            if node.op_type == "MatMul" and node.name in groups:
                nodes.extend(self.replace(groups[node.name]))
            elif node.name not in merged_away:
                nodes.append(node)
        nodes = _live(self.fuse_gelu(nodes), [output.name for output in self.graph.output])
        del self.graph.node[:]
        self.graph.node.extend(nodes)
        used = {name for node in nodes for name in node.input}
        kept = [tensor for tensor in self.graph.initializer if tensor.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)
        if not any(opset.domain == MS_DOMAIN for opset in self.model.opset_import):
            self.model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
        return self.model


def _live(nodes: list[onnx.NodeProto], outputs: list[str]) -> list[onnx.NodeProto]:
    """The nodes the outputs depend on, in their order (the dequantizing Cast*scale nodes drop out)."""
    producers = {output: node for node in nodes for output in node.output}
    needed: set[str] = set()
    pending = list(outputs)
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.add(name)
        node = producers.get(name)
        if node is not None:
            pending.extend(name for name in node.input if name)
    return [node for node in nodes if any(output in needed for output in node.output)]
