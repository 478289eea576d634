"""The emulators' embeddings in the size a request asks for, made from the local model's 384 dimensions."""

from __future__ import annotations

import numpy as np
import pytest

from local.model.output_size import MODEL_DIMENSIONS, resize


def unit_vectors(count: int, seed: int = 7) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, MODEL_DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("dimensions", [512, 1024, 1536])
def test_a_larger_size_keeps_every_similarity_and_length(dimensions: int) -> None:
    # Given unit vectors of the local model's size
    vectors = unit_vectors(20)
    # When they are made `dimensions` long
    sized = resize(vectors, dimensions)
    # Then they have that size, and every dot product (so every cosine and L2 distance) is unchanged
    assert sized.shape == (20, dimensions)
    np.testing.assert_allclose(sized @ sized.T, vectors @ vectors.T, atol=1e-5)


def test_the_map_is_the_same_in_every_call_so_queries_meet_their_documents() -> None:
    # Given one vector made 1024 long as a document, and again later as a query
    vector = unit_vectors(1)
    # Then both are the same vector
    np.testing.assert_array_equal(resize(vector, 1024), resize(vector.copy(), 1024))


@pytest.mark.parametrize("dimensions", [256, 100])
def test_a_smaller_size_keeps_the_leading_components_at_unit_length(dimensions: int) -> None:
    # Given unit vectors / When they are made shorter than the model's size
    vectors = unit_vectors(5)
    sized = resize(vectors, dimensions)
    # Then each is its leading components, renormalised to unit length
    assert sized.shape == (5, dimensions)
    np.testing.assert_allclose(np.linalg.norm(sized, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(
        sized,
        vectors[:, :dimensions] / np.linalg.norm(vectors[:, :dimensions], axis=1, keepdims=True),
        atol=1e-6,
    )


def test_the_models_own_size_or_none_leaves_vectors_as_they_are() -> None:
    vectors = unit_vectors(3)
    assert resize(vectors, None) is vectors
    assert resize(vectors, MODEL_DIMENSIONS) is vectors
