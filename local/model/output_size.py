"""Embeddings of the size a request asks for, made from the local MiniLM's 384 dimensions.

Titan Text Embeddings V2 answers with `dimensions` 256, 512 or 1024 ("Amazon Titan Text Embeddings models",
https://docs.aws.amazon.com/bedrock/latest/userguide/titan-embedding-models.html; the request field:
"Amazon Titan Embeddings G1 - Text", .../bedrock/latest/userguide/model-parameters-titan-embed-text.html),
and OpenAI's text-embedding-3 models with any `dimensions` up to their size ("Vector embeddings",
https://platform.openai.com/docs/guides/embeddings, "Reducing embedding dimensions"). A local index mapped
with the real size then takes the emulators' vectors as it would the services'.

- N >= 384: a fixed 384 -> N map with orthonormal columns (the Q of the QR decomposition of an N x 384
  Gaussian matrix drawn from one fixed seed). It is an isometry: every dot product and length, and so every
  cosine similarity and L2 distance, is the 384-dimension model's, exact up to float rounding. Batch
  outputs and query vectors go through the same map, so searches rank as with the 384-dimension vectors.
- N < 384: the first N components, renormalised to unit length: how OpenAI shortens an embedding (the
  guide above: drop numbers from the end of the sequence, then normalise). text-embedding-3 was trained for
  that (Matryoshka representation learning) and MiniLM was not, so at these sizes similarities are only
  close to the 384-dimension model's; the vectors are still the right size and deterministic.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MODEL_DIMENSIONS = 384  # all-MiniLM-L6-v2
_SEED = 384_1024  # any fixed value: the map only has to be the same in every process and every run


@lru_cache(maxsize=8)
def _isometry(dimensions: int) -> np.ndarray:
    """An N x 384 matrix with orthonormal columns, the same for the same N in every process."""
    gaussian = np.random.default_rng(_SEED).standard_normal((dimensions, MODEL_DIMENSIONS))
    q, r = np.linalg.qr(gaussian)
    # QR is unique up to the signs of r's diagonal; fixing them makes the map depend on the draw only.
    q = q * np.sign(np.diag(r))
    return q.astype(np.float32)


def resize(vectors: np.ndarray, dimensions: int | None, *, normalize: bool = True) -> np.ndarray:
    """`vectors` (n x 384) as n x `dimensions` (None: unchanged)."""
    if dimensions is None or dimensions == vectors.shape[1]:
        return vectors
    if dimensions < 1:
        raise ValueError(f"dimensions must be positive, not {dimensions}")
    if vectors.shape[1] != MODEL_DIMENSIONS:
        raise ValueError(f"expected {MODEL_DIMENSIONS}-dimension vectors, got {vectors.shape[1]}")
    if dimensions > MODEL_DIMENSIONS:
        return np.asarray(vectors @ _isometry(dimensions).T, dtype=np.float32)
    shortened = vectors[:, :dimensions]
    if not normalize:
        return np.asarray(shortened, dtype=np.float32)
    norms = np.linalg.norm(shortened, axis=1, keepdims=True)
    return np.asarray(shortened / np.where(norms == 0, 1, norms), dtype=np.float32)
