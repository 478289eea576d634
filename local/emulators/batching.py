"""Embed a stream of records in bounded batches, giving each record its vectors back in input order.

The model is much faster on many texts at once (it sorts them by length and pads little), so records are
grouped whatever the service's own batching says; the service layer only decides what a record's texts are
and what its output line looks like. Batches are bounded in texts and bytes, so memory stays flat however
large the input is.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from local.model import Embedder

T = TypeVar("T")

# About a second of model time for short texts: frequent enough stop checks, big enough length sorting.
DEFAULT_MAX_TEXTS = 128


@dataclass(frozen=True)
class EmbedRequest(Generic[T]):
    payload: T  # whatever the service needs to write the record's output
    texts: list[str]
    size: int  # bytes the record weighs against the batch's payload bound


def embed_in_batches(
    requests: Iterable[EmbedRequest[T]],
    embedder: Embedder,
    *,
    max_texts: int = DEFAULT_MAX_TEXTS,
    max_bytes: int | None = None,
    before_batch: Callable[[], None] = lambda: None,
) -> Iterator[tuple[T, np.ndarray]]:
    """Yields (payload, vectors of shape (len(texts), dim)) for each request, in order.

    before_batch runs before every model call: the place for a stop check.
    """
    pending: list[EmbedRequest[T]] = []
    texts = 0
    size = 0
    for request in requests:
        too_many = texts + len(request.texts) > max_texts
        too_big = max_bytes is not None and size + request.size > max_bytes
        if pending and (too_many or too_big):
            yield from _embed(pending, embedder, before_batch)
            pending, texts, size = [], 0, 0
        pending.append(request)
        texts += len(request.texts)
        size += request.size
    if pending:
        yield from _embed(pending, embedder, before_batch)


class ModelInputLog:
    """Every text the emulated services sent to the model since the last reset: the count, and the latest
    texts (up to KEPT), so a test can assert what reached the model from the service's side, not from
    osbatch's counts. Read and reset over the fault route (faults.py: `model_inputs`, `model_input_log`)."""

    KEPT = 20_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.latest: deque[str] = deque(maxlen=self.KEPT)

    def add(self, texts: list[str]) -> None:
        with self._lock:
            self.count += len(texts)
            self.latest.extend(texts)

    def reset(self) -> None:
        with self._lock:
            self.count = 0
            self.latest.clear()


MODEL_INPUTS = ModelInputLog()


def _embed(
    batch: list[EmbedRequest[T]], embedder: Embedder, before_batch: Callable[[], None]
) -> Iterator[tuple[T, np.ndarray]]:
    before_batch()
    texts = [text for request in batch for text in request.texts]
    MODEL_INPUTS.add(texts)
    vectors = embedder.embed(texts)
    start = 0
    for request in batch:
        end = start + len(request.texts)
        yield request.payload, vectors[start:end]
        start = end
