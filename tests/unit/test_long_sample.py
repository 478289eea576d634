"""samples/python-modules: long real documents, and questions answered deep inside them."""

from __future__ import annotations

import json

from tests.unit.helpers import REPO

FOLDER = REPO / "samples" / "python-modules"


def read(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (FOLDER / name).read_text(encoding="utf-8").splitlines()]


def test_the_documents_are_long_and_the_sample_small() -> None:
    documents = read("modules.jsonl")
    assert 60 <= len(documents) <= 100
    assert min(len(str(document["text"]).split()) for document in documents) >= 1_000
    assert (FOLDER / "modules.jsonl").stat().st_size < 5_000_000
    assert len({document["_id"] for document in documents}) == len(documents)


def test_every_question_is_answered_past_350_words_into_its_document() -> None:
    # Given the documents and the questions
    texts = {str(document["_id"]): str(document["text"]) for document in read("modules.jsonl")}
    questions = read("questions.jsonl")
    assert len(questions) >= 30
    for question in questions:
        # Then the quoted evidence is in the named document, deeper than a 256-wordpiece model reads
        text = texts[str(question["document_id"])]
        at = text.find(str(question["evidence"]))
        assert at >= 0, question
        assert len(text[:at].split()) == question["evidence_word"] > 350
