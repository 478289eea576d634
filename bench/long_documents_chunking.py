"""The retrieval part of bench/long_documents.py, before the node: the corpora, their vectors, and which
chunking finds their documents best, by exact cosine.

Corpora (each with questions answered more than 350 words into their document):
- python-modules: 63 long module docs, each opening with its own topic (samples/python-modules);
- aws-cdk-guides: 42 long guides that share their topics (samples/aws-cdk-guides);
- python-modules among python-docs: the same 63 long docs and questions, among the 2,640 short docstring
  records of samples/python-docs (real text on the same modules, their ids prefixed `python-docs:` so
  that a module's one-paragraph summary record stays a document of its own). A collection of mostly short
  documents with the long ones among them, the shape of the 79 reference documents (median 241 words) on
  which chunking was first measured. The question's document is still the long module: a short record
  ranked above it counts against both methods alike.

Each chunking is scored the way the node scores the record layout (a document scores as its best
passage, `score_mode: max`), by exact cosine on the same vectors, so that several configs can be compared
without loading an index for each; bench/long_documents.py then checks the pipeline's own config through
`osbatch search` on the node.

Vectors are a pure function of the model and the text, so they are kept between runs in a cache file
under .osbatch/bench/ named after the model's and tokenizer's hashes (--fresh-vectors ignores it): the
table's figures do not depend on how fast they were computed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from osbatch.chunking import Chunker, ChunkingConfig, TokenizerJsonCounter

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
CACHE_FOLDER = ROOT / ".osbatch" / "bench"
TOP = 10
SHORT_PREFIX = "python-docs:"
MIXED = "python-modules among python-docs"
TARGET_CORPUS = MIXED  # see the docstring of bench/long_documents.py


def _chunking(*steps: dict[str, Any]) -> ChunkingConfig:
    return ChunkingConfig.model_validate({"algorithms": list(steps)})


def _fixed(tokens: int) -> dict[str, Any]:
    return {"fixed_token_length": {"token_limit": tokens, "overlap_rate": 0.2, "max_chunk_limit": 2000}}


PARAGRAPHS = {"delimiter": {"delimiter": "\n\n", "max_chunk_limit": 2000}}
# The configs compared, each printed: paragraphs first (text_chunking's chain, the sample pipeline's until
# this bench compared them), fixed windows alone, and windows half as long.
CHUNKINGS = {
    "paragraphs, then 254 wordpieces": _chunking(PARAGRAPHS, _fixed(254)),
    "254 wordpieces": _chunking(_fixed(254)),
    "128 wordpieces": _chunking(_fixed(128)),
}


@dataclass(frozen=True)
class Corpus:
    name: str
    slug: str  # in index names
    documents: list[dict[str, Any]]
    questions: list[dict[str, Any]]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def sample(folder: str) -> Corpus:
    path = SAMPLES / folder
    return Corpus(folder, folder, _lines(path / "modules.jsonl"), _lines(path / "questions.jsonl"))


def short_records() -> list[dict[str, Any]]:
    """samples/python-docs' valid records (not its 5 deliberately bad lines), ids prefixed."""
    records = []
    for path in sorted((SAMPLES / "python-docs").glob("part-*.jsonl")):
        for raw in path.read_bytes().splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("_id") and isinstance(record.get("text"), str):
                records.append({**record, "_id": SHORT_PREFIX + record["_id"]})
    return records


def corpora() -> list[Corpus]:
    modules = sample("python-modules")
    mixed = Corpus(
        MIXED, "python-modules-among-python-docs", modules.documents + short_records(), modules.questions
    )
    return [modules, sample("aws-cdk-guides"), mixed]


class VectorCache:
    """The local MiniLM's vectors by text, computed once per text and kept in a file between runs."""

    def __init__(self, embedder: Any, model_files: Sequence[Path], fresh: bool = False) -> None:
        digest = hashlib.sha256()
        for path in model_files:
            digest.update(path.read_bytes())
        self._embedder = embedder
        self.dimension: int = embedder.dimension
        self._path = CACHE_FOLDER / f"long-documents-vectors-{digest.hexdigest()[:16]}.pkl"
        self._vectors: dict[str, np.ndarray] = {}
        if self._path.is_file() and not fresh:
            self._vectors = pickle.loads(self._path.read_bytes())  # a file this bench wrote

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if missing:
            started = time.perf_counter()
            self._vectors.update(zip(missing, self._embedder.embed(missing), strict=True))
            print(f"    embedded {len(missing)} new texts in {time.perf_counter() - started:.0f} s")
            CACHE_FOLDER.mkdir(parents=True, exist_ok=True)
            partial = self._path.with_suffix(".partial")  # renamed into place: a reader never sees half
            partial.write_bytes(pickle.dumps(self._vectors))
            partial.replace(self._path)
        return np.stack([self._vectors[text] for text in texts])


@dataclass(frozen=True)
class Quality:
    mrr: float
    recall: float
    first: int  # questions whose document came first
    vectors: int


def ranks(found: list[list[str]], expected: list[str]) -> list[int | None]:
    """1-based rank of each question's expected document in its top TOP, None if not there."""
    return [
        next((rank for rank, doc in enumerate(hits[:TOP], 1) if doc == want), None)
        for hits, want in zip(found, expected, strict=True)
    ]


def quality_of(placed: list[int | None], vectors: int) -> Quality:
    mrr = sum(1 / rank for rank in placed if rank) / len(placed)
    recall = sum(1 for rank in placed if rank) / len(placed)
    return Quality(mrr, recall, sum(rank == 1 for rank in placed), vectors)


def _top_documents(scores: np.ndarray, ids: list[str]) -> list[list[str]]:
    """Per question (a row of document scores), the TOP best document ids; ties keep corpus order."""
    return [[ids[i] for i in np.argsort(-row, kind="stable")[:TOP]] for row in scores]


def whole_text(corpus: Corpus, cache: VectorCache) -> Quality:
    """One vector per document, of its whole text (the model reads its first 256 wordpieces)."""
    questions = cache.embed([question["question"] for question in corpus.questions])
    documents = cache.embed([str(document["text"]) for document in corpus.documents])
    found = _top_documents(questions @ documents.T, [str(document["_id"]) for document in corpus.documents])
    return quality_of(ranks(found, [q["document_id"] for q in corpus.questions]), len(documents))


def by_best_passage(corpus: Corpus, cache: VectorCache, chunking: ChunkingConfig, tokenizer: Path) -> Quality:
    """One vector per passage; a document scores as its best passage."""
    chunker = Chunker(chunking, TokenizerJsonCounter.from_file(tokenizer))
    owners, texts = [], []
    for number, document in enumerate(corpus.documents):
        for passage in chunker.passages(str(document["text"])):
            owners.append(number)
            texts.append(passage.text)
    passages = cache.embed(texts)
    questions = cache.embed([question["question"] for question in corpus.questions])
    scores = np.full((len(questions), len(corpus.documents)), -np.inf, dtype=np.float32)
    # Each passage's cosine lifts its document's score to it if higher: score_mode max.
    np.maximum.at(scores.T, np.asarray(owners), passages @ questions.T)
    found = _top_documents(scores, [str(document["_id"]) for document in corpus.documents])
    return quality_of(ranks(found, [q["document_id"] for q in corpus.questions]), len(passages))


def chunking_table(corpus: Corpus, cache: VectorCache, tokenizer: Path) -> dict[str, Quality]:
    """Whole text and every chunking of CHUNKINGS on one corpus, printed as a table; by name."""
    results = {"whole text": whole_text(corpus, cache)}
    for name, chunking in CHUNKINGS.items():
        results[name] = by_best_passage(corpus, cache, chunking, tokenizer)
    whole = results["whole text"].mrr
    size = f"{len(corpus.documents)} documents, {len(corpus.questions)} questions"
    print(f"  {corpus.name} ({size}), exact cosine:")
    header = f"{'vectors':>7} {'MRR@10':>7} {'recall@10':>9} {'first':>5} {'MRR ratio':>9}"
    print(f"    {'vectors of':<34} {header}")
    for name, quality in results.items():
        ratio = quality.mrr / whole if whole else float("inf")
        print(
            f"    {name:<34} {quality.vectors:>7} {quality.mrr:>7.2f} {quality.recall:>9.2f} "
            f"{quality.first:>5} {ratio:>8.2f}x"
        )
    return results
