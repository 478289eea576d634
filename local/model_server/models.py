"""What the local model server computes, apart from HTTP: every answer comes from the MiniLM embedder.

- embeddings: all-MiniLM-L6-v2 sentence vectors (384 dimensions, L2-normalized);
- text similarity: the cosine of the two texts' embeddings, in the `{"label", "score"}` shape of a
  Hugging Face cross-encoder, so a rerank orders hits by meaning;
- answers: no generative model ships on PyPI that runs here, so the "LLM" is extractive. It answers with the
  context passages most similar to the question, and says so in the answer itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from local.model.embedder import Embedder
from local.model.output_size import resize

SIMILARITY_LABEL = "LABEL_0"  # a one-output cross-encoder's only label, as Hugging Face names it
EXTRACTIVE_MODEL = "osbatch-extractive-minilm"
EXTRACTIVE_LABEL = (
    "[extractive answer: no generative model runs locally; "
    "these are the context passages most similar to the question]"
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CONTEXT_MARKER = re.compile(r"\bcontext\s*:", re.IGNORECASE)
_ASSISTANT_TURN = re.compile(r"(?:^|\s)assistant\s*:.*$", re.IGNORECASE | re.DOTALL)


class BadInput(ValueError):
    """The request does not have the shape this model reads; the message says what was expected."""


@dataclass(frozen=True)
class Answer:
    response: str
    passages: list[str]


class LocalModels:
    def __init__(self, embedder: Embedder, *, answer_passages: int = 2) -> None:
        self.embedder = embedder
        self.answer_passages = answer_passages

    def embed(self, texts: Sequence[Any], dimensions: int | None = None) -> list[list[float]]:
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise BadInput(f"input {position} is {type(text).__name__}, not a string")
        return [[float(x) for x in row] for row in resize(self.embedder.embed(list(texts)), dimensions)]

    def similarity(self, text: Any, text_pair: Any) -> dict[str, Any]:
        if not isinstance(text, str) or not isinstance(text_pair, str):
            raise BadInput("inputs.text and inputs.text_pair must both be strings")
        first, second = self.embedder.embed([text, text_pair])
        return {"label": SIMILARITY_LABEL, "score": float(np.dot(first, second))}

    def answer(self, prompt: Any) -> Answer:
        if not isinstance(prompt, str) or not prompt.strip():
            raise BadInput("prompt must be a non-empty string")
        question, passages = split_prompt(prompt)
        if not passages:
            raise BadInput("the prompt has no context to answer from (expected 'Context: ...')")
        vectors = self.embedder.embed([question, *passages])
        scores = vectors[1:] @ vectors[0]
        order = np.argsort(-scores, kind="stable")[: self.answer_passages]
        chosen = [passages[int(i)] for i in order]
        return Answer(f"{EXTRACTIVE_LABEL} {' '.join(chosen)}", chosen)


def split_prompt(prompt: str) -> tuple[str, list[str]]:
    """(question, context passages) of a RAG-style prompt: '... question? ... Context: <passages>'.

    The context may be a JSON list (ML Commons renders `${parameters.context.toString()}` of a list that
    way) or free text, which is cut into sentences.
    """
    # The last "Context:" starts the context; earlier ones belong to the instructions.
    markers = list(_CONTEXT_MARKER.finditer(prompt))
    if not markers:
        return prompt.strip(), []
    instructions, context = prompt[: markers[-1].start()], prompt[markers[-1].end() :]
    context = _ASSISTANT_TURN.sub("", context).strip()
    questions = [s for s in _sentences(instructions) if s.endswith("?")]
    question = questions[-1] if questions else instructions.strip()
    return question, _passages(context)


def _passages(context: str) -> list[str]:
    # Prompts often end the context with a period: "Context: ${parameters.context.toString()}."
    for candidate in (context, context.rstrip(".").strip()):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(parsed, list):
            return [str(item).strip() for item in _flatten(parsed) if str(item).strip()]
    return _sentences(context)


def _flatten(items: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in items:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]
