"""The local model server's answers, with a stand-in embedder whose vectors are known."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from local.model_server.app import handle
from local.model_server.models import EXTRACTIVE_LABEL, BadInput, LocalModels, split_prompt

# Each text's vector is fixed, so which context passage is "most similar" is known in advance.
VECTORS = {
    "which month was cheapest?": [1.0, 0.0, 0.0],
    "March cost $40.": [0.9, 0.1, 0.0],
    "January cost $50.": [0.0, 1.0, 0.0],
    "I love you": [0.6, 0.8, 0.0],
    "I adore you": [0.6, 0.8, 0.0],
    "I hate you": [0.0, 0.0, 1.0],
}


class KnownVectors:
    dimension = 3

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.array([VECTORS[text] for text in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


MODELS = LocalModels(KnownVectors(), answer_passages=1)


def test_embed_returns_one_vector_per_text_in_the_default_embedding_shape() -> None:
    assert handle(MODELS, "/embed", ["I love you", "I hate you"]) == [
        pytest.approx([0.6, 0.8, 0.0]),
        pytest.approx([0.0, 0.0, 1.0]),
    ]
    # A single string, as one_to_one sends it, is one text
    assert len(handle(MODELS, "/embed", "I love you")) == 1


def test_embed_refuses_what_is_not_text() -> None:
    with pytest.raises(BadInput, match="input 0 is int, not a string"):
        handle(MODELS, "/embed", [4])


def test_similarity_is_the_cosine_of_the_two_embeddings() -> None:
    same = handle(MODELS, "/similarity", {"inputs": {"text": "I love you", "text_pair": "I adore you"}})
    opposite = handle(MODELS, "/similarity", {"inputs": {"text": "I love you", "text_pair": "I hate you"}})
    assert same == {"label": "LABEL_0", "score": pytest.approx(1.0)}
    assert opposite["score"] == pytest.approx(0.0, abs=1e-6)


def test_a_prompt_is_split_into_its_question_and_its_json_context() -> None:
    prompt = (
        'Human: answer question: which month was cheapest? Context: ["March cost $40.", "January cost $50."].'
        " Assistant:"
    )
    assert split_prompt(prompt) == (
        "Human: answer question: which month was cheapest?",
        ["March cost $40.", "January cost $50."],
    )


def test_the_answer_is_the_most_similar_passage_and_says_it_is_extractive() -> None:
    # Given a question whose answer is the first passage
    answer = handle(
        MODELS,
        "/generate",
        {"prompt": "which month was cheapest? Context: January cost $50. March cost $40."},
    )
    # Then the response quotes that passage, labelled
    assert answer["response"] == f"{EXTRACTIVE_LABEL} March cost $40."
    assert answer["passages"] == ["March cost $40."]


def test_a_prompt_without_context_is_refused() -> None:
    with pytest.raises(BadInput, match="no context"):
        handle(MODELS, "/generate", {"prompt": "which month was cheapest?"})


class UnitVectors:
    """The local model's size: text n gets the n-th unit vector of 384."""

    dimension = 384

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.eye(self.dimension, dtype=np.float32)[[int(text) for text in texts]]


def test_embed_answers_in_the_size_the_connector_asks_for() -> None:
    # Given the local model's 384-dimension vectors / When a connector asks /embed for 512 dimensions
    vectors = handle(LocalModels(UnitVectors(), answer_passages=1), "/embed?dimensions=512", ["0", "1", "1"])
    # Then each vector is 512 long and similarities are the model's: orthogonal stays so, equal stays equal
    assert [len(vector) for vector in vectors] == [512, 512, 512]
    assert np.dot(vectors[0], vectors[1]) == pytest.approx(0.0, abs=1e-6)
    assert np.dot(vectors[1], vectors[2]) == pytest.approx(1.0, abs=1e-6)
