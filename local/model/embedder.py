"""Sentence embeddings on onnxruntime, computed the way sentence-transformers computes them.

all-MiniLM-L6-v2 is Transformer -> Pooling(mean) -> Normalize (its modules.json). Reproducing that means:
- truncating at the model's max_seq_length (256), not at what tokenizer.json ships with (128 for this
  model: a 400-word text then drifts to a cosine of 0.91 against the reference);
- feeding token_type_ids as zeros and the real attention mask;
- averaging only over real tokens, so padding never changes a vector and batches may mix lengths.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from local.model import packaged

DEFAULT_MAX_SEQ_LENGTH = 256
# Texts are sorted by length, then cut into batches of at most this many padded tokens. What makes a batch
# fast is that its activations stay in cache, which depends on tokens, not texts. Measured on 1 core:
# 16 short queries (~18 tokens) or 4 passages (~130 tokens) per batch beat both smaller and larger ones.
DEFAULT_BATCH_TOKENS = 512
DEFAULT_BATCH_SIZE = 64  # and at most this many texts


class Session(Protocol):
    """What the embedder needs of an onnxruntime.InferenceSession."""

    def get_inputs(self) -> Sequence[Any]: ...

    def get_outputs(self) -> Sequence[Any]: ...

    def run(self, output_names: list[str] | None, feeds: dict[str, Any]) -> Sequence[Any]: ...


class Embedder(Protocol):
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dimension), each row L2-normalized."""
        ...


def default_threads() -> int:
    """One intra-op thread per core we may run on, capped at 4.

    Past 4 threads a model this small gains little and starves the processes that share the machine in
    local mode (the moto server, OpenSearch).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def open_session(model_path: Path, threads: int, *, optimized_to: Path | None = None) -> ort.InferenceSession:
    """An onnxruntime session on the graph as it is; optimized_to also writes the graph onnxruntime runs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # One graph, run op after op: inter-op parallelism only adds threads that compete with intra-op ones.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning workers burn the cores that the moto server and OpenSearch need in local mode, and on a
    # busy 2-core box a descheduled spinner stalls every op (measured there: 2 threads ran short queries
    # faster with spinning off than on).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_to is not None:
        options.optimized_model_filepath = str(optimized_to)
    # onnxruntime fuses bias + residual Add + LayerNormalization into SkipLayerNormalization, which on this
    # build ran ~4x slower than the Add and LayerNormalization it replaces (profiled on MiniLM).
    return ort.InferenceSession(
        str(model_path),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=["SkipLayerNormFusion"],
    )


def configured_tokenizer(tokenizer_path: Path, max_seq_length: int) -> tuple[Tokenizer, int]:
    """The tokenizer, truncating at max_seq_length and not padding, and its pad token id."""
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    padding: dict[str, Any] | None = tokenizer.padding
    pad_id = int(padding["pad_id"]) if padding else (tokenizer.token_to_id("[PAD]") or 0)
    tokenizer.enable_truncation(max_length=max_seq_length)
    # We pad per batch ourselves, to the batch's longest text; tokenizer.json may ship a fixed padding.
    tokenizer.no_padding()
    return tokenizer, pad_id


def _max_seq_length(folder: Path) -> int:
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        value = json.loads(config.read_text()).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_MAX_SEQ_LENGTH


def _find_onnx(folder: Path) -> Path:
    # Hugging Face repos exported with optimum keep the graph in onnx/; plain exports put it at the top.
    for candidate in (folder / "model.onnx", folder / "onnx" / "model.onnx"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no model.onnx in {folder} (nor in {folder / 'onnx'})")


class OnnxSentenceEmbedder:
    """Mean-pooled, L2-normalized sentence embeddings from an ONNX transformer graph.

    Thread-safe: onnxruntime sessions and tokenizers may be used from several threads at once.
    """

    def __init__(
        self,
        session: Session,
        tokenizer: Tokenizer,
        *,
        pad_id: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        threads: int = 1,
    ) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._pad_id = pad_id
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.threads = threads
        self._input_names = {graph_input.name for graph_input in session.get_inputs()}
        self._output_name = session.get_outputs()[0].name
        width = session.get_outputs()[0].shape[-1]
        # Graphs exported with a symbolic hidden size only tell their width when run.
        self.dimension: int = width if isinstance(width, int) else self._probe_dimension()

    @classmethod
    def from_files(
        cls,
        model_path: Path,
        tokenizer_path: Path,
        *,
        max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        threads: int | None = None,
    ) -> OnnxSentenceEmbedder:
        threads = threads or default_threads()
        tokenizer, pad_id = configured_tokenizer(tokenizer_path, max_seq_length)
        return cls(
            open_session(model_path, threads),
            tokenizer,
            pad_id=pad_id,
            batch_size=batch_size,
            batch_tokens=batch_tokens,
            threads=threads,
        )

    @classmethod
    def from_folder(
        cls,
        folder: Path,
        *,
        max_seq_length: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
    ) -> OnnxSentenceEmbedder:
        """Any sentence-transformers model exported to ONNX: model.onnx (or onnx/model.onnx) + tokenizer.json.

        max_seq_length defaults to the folder's sentence_bert_config.json, else 256. The graph runs as it is.
        """
        folder = Path(folder)
        tokenizer_path = folder / "tokenizer.json"
        if not tokenizer_path.is_file():
            raise FileNotFoundError(f"no tokenizer.json in {folder}")
        return cls.from_files(
            _find_onnx(folder),
            tokenizer_path,
            max_seq_length=max_seq_length or _max_seq_length(folder),
            batch_size=batch_size,
            threads=threads,
        )

    @classmethod
    def default(
        cls,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
    ) -> OnnxSentenceEmbedder:
        """The packaged all-MiniLM-L6-v2 (384 dimensions), its graph run as shipped.

        That graph computes every product in fp32 (local.model.packaged), so its vectors are the same on
        every CPU up to float rounding: within a cosine of 0.99 of sentence-transformers' everywhere.
        """
        reference = packaged.sentence_transformers_folder()
        return cls.from_files(
            packaged.onnx_model_path(),
            reference / "tokenizer.json",
            max_seq_length=_max_seq_length(reference),
            batch_size=batch_size,
            threads=threads,
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {position} is {type(text).__name__}, not str")
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        encodings = self._tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(encoding.ids) for encoding in encodings), dtype=np.int64, count=len(texts))
        for rows in self._batches(lengths):
            vectors[rows] = self._run([encodings[row].ids for row in rows], int(lengths[rows].max()))
        return vectors

    def _batches(self, lengths: np.ndarray) -> Iterator[np.ndarray]:
        """Row indexes by increasing length, cut at batch_tokens padded tokens or batch_size texts."""
        # Similar lengths in one batch: little padding, so little wasted compute.
        batch: list[int] = []
        for row in np.argsort(lengths, kind="stable"):
            width = int(lengths[row])  # rows come shortest first, so the newest row sets the padding
            if batch and (len(batch) >= self.batch_size or (len(batch) + 1) * width > self.batch_tokens):
                yield np.array(batch)
                batch = []
            batch.append(int(row))
        if batch:
            yield np.array(batch)

    def _probe_dimension(self) -> int:
        ids = self._tokenizer.encode("").ids
        return int(self._run([ids], len(ids)).shape[1])

    def _run(self, token_ids: list[list[int]], width: int) -> np.ndarray:
        input_ids = np.full((len(token_ids), width), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(token_ids), width), dtype=np.int64)
        for row, ids in enumerate(token_ids):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        output = np.asarray(self._session.run([self._output_name], feeds)[0], dtype=np.float32)
        if output.ndim == 3:  # token embeddings: mean over the real tokens only
            mask = attention_mask[:, :, None].astype(np.float32)
            output = (output * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(output, axis=1, keepdims=True)
        return (output / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
