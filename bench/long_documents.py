"""Long documents: what chunking costs in memory, and what it buys in retrieval, in one run.

    .venv/bin/python bench/long_documents.py [--quick]

1. Memory. A 50 MB record (the sample's real text repeated into one JSON line) is chunked in a fresh process
   with the python-modules pipeline's chunking (paragraphs, then 254 MiniLM wordpieces, 20% overlap), its
   max_chunk_limit lifted so that the whole record is chunked rather than dead-lettered. Its peak resident
   memory (VmHWM) is set against the same process that only reads and parses the line. The passages are
   checked as they stream by: contiguous or overlapping, the last ending at the text's end, a sample of
   them counted again by the tokenizer. --quick chunks a 10 MB record instead.
2. Retrieval quality on samples/python-modules/ and its questions (each answered more than 350 words into
   its document), with the local all-MiniLM-L6-v2 (local/model) and exact cosine in numpy, no index:
   one vector per document's whole text (the model reads its first 256 wordpieces) against one vector per
   passage, a document scoring as its best passage. MRR@10 and recall@10 of the expected document.

This is the first part of the long-documents bench: its final form runs the same questions through
`osbatch search` on the local node against indices built by the pipeline, once search returns documents
with their best passages; until then the quality figures come from the same model and the same passages,
ranked in numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

# The measured child imports only this module's top: numpy and onnxruntime (local.model) would add their
# own megabytes to both figures, so the parent imports them where it needs them.
from osbatch.chunking import Chunker, ChunkingConfig, TokenizerJsonCounter  # noqa: E402
from osbatch.config import load_pipeline  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

SAMPLE = ROOT / "samples" / "python-modules"
PIPELINE = ROOT / "pipelines" / "examples" / "python-modules.yaml"
MEMORY_TARGET_MB = 300
MRR_RATIO_TARGET = 1.5
RECALL_TARGET = 0.9
TOP = 10
UNLIMITED = 10**9  # passages per record: the memory run chunks the whole record


def chunking(tokenizer: Path, unlimited: bool = False) -> Chunker:
    config = load_pipeline(PIPELINE).source.chunking
    assert config is not None, f"{PIPELINE} does not chunk"
    if unlimited:
        data = config.model_dump()
        for step in data["algorithms"]:
            for parameters in step.values():
                if parameters is not None:
                    parameters["max_chunk_limit"] = UNLIMITED
        config = ChunkingConfig.model_validate(data)
    return Chunker(config, TokenizerJsonCounter.from_file(tokenizer))


def high_water_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(path: str, tokenizer: str, chunk: bool) -> None:
    """The measured process: read and parse the line; then, unless this is the baseline, chunk it."""
    splitter = chunking(Path(tokenizer), unlimited=True) if chunk else None
    with open(path, "rb") as file:
        text = orjson.loads(file.read())["text"]  # as Prepare reads a line (osbatch.jsonlines)
    passages, covered, sampled_over = 0, 0, 0
    if splitter is not None:
        counter = TokenizerJsonCounter.from_file(Path(tokenizer))
        for passage in splitter.passages(text):
            assert passage.start <= covered, f"characters {covered}-{passage.start} are in no passage"
            covered = max(covered, passage.end)
            if passages % 97 == 0 and counter.count(passage.text) > counter.max_tokens:
                sampled_over += 1
            passages += 1
        assert covered == len(text), "the passages stop before the text ends"
    print(json.dumps({"peak_mb": high_water_mb(), "passages": passages, "over": sampled_over}))


def measure(path: Path, tokenizer: Path, chunk: bool) -> dict[str, float]:
    code = f"import bench.long_documents as b; b.child({str(path)!r}, {str(tokenizer)!r}, {chunk})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "lambdas")])}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env
    )
    return dict(json.loads(out.stdout.splitlines()[-1]))


def memory(megabytes: int, tokenizer: Path) -> tuple[float, bool]:
    documents = [json.loads(line)["text"] for line in (SAMPLE / "modules.jsonl").read_text().splitlines()]
    corpus = "\n\n".join(documents)
    text = (corpus * (megabytes * 1_000_000 // len(corpus) + 1))[: megabytes * 1_000_000]
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "record.jsonl"
        path.write_text(json.dumps({"_id": "long", "text": text}) + "\n")
        del text, corpus
        baseline = measure(path, tokenizer, chunk=False)
        started = time.perf_counter()
        chunked = measure(path, tokenizer, chunk=True)
        seconds = time.perf_counter() - started
    print(
        f"  reading a {megabytes} MB record: peak {baseline['peak_mb']:.0f} MB; chunking it too: peak "
        f"{chunked['peak_mb']:.0f} MB (+{chunked['peak_mb'] - baseline['peak_mb']:.0f} MB), "
        f"{chunked['passages']:.0f} passages in {seconds:.0f} s, every character covered"
    )
    return chunked["peak_mb"], chunked["over"] == 0 and chunked["passages"] > 0


def ranks(scores: np.ndarray, expected: list[int]) -> list[int | None]:
    """1-based rank of each question's expected document in its top TOP, None if not there."""
    import numpy as np

    order = np.argsort(-scores, axis=1, kind="stable")[:, :TOP]
    return [
        next((r + 1 for r, doc in enumerate(row) if doc == want), None)
        for row, want in zip(order, expected, strict=True)
    ]


def mrr(found: list[int | None]) -> float:
    return sum(1 / rank for rank in found if rank) / len(found)


def recall(found: list[int | None]) -> float:
    return sum(1 for rank in found if rank) / len(found)


def quality(tokenizer: Path) -> tuple[float, float, float, float]:
    import numpy as np

    from local.model import OnnxSentenceEmbedder

    documents = [json.loads(line) for line in (SAMPLE / "modules.jsonl").read_text().splitlines()]
    questions = [json.loads(line) for line in (SAMPLE / "questions.jsonl").read_text().splitlines()]
    ids = [document["_id"] for document in documents]
    expected = [ids.index(question["document_id"]) for question in questions]
    splitter = chunking(tokenizer)
    owners, passages = [], []
    for number, document in enumerate(documents):
        for passage in splitter.passages(document["text"]):
            owners.append(number)
            passages.append(passage.text)
    embedder = OnnxSentenceEmbedder.default()
    started = time.perf_counter()
    query = embedder.embed([question["question"] for question in questions])
    whole = embedder.embed([document["text"] for document in documents])
    parts = embedder.embed(passages)
    print(
        f"  {len(documents)} documents, {len(passages)} passages, {len(questions)} questions embedded "
        f"in {time.perf_counter() - started:.0f} s ({embedder.variant} graph)"
    )
    whole_found = ranks(query @ whole.T, expected)
    best = np.full((len(questions), len(documents)), -np.inf, dtype=np.float32)
    np.maximum.at(best.T, np.array(owners), (query @ parts.T).T)  # a document scores as its best passage
    passage_found = ranks(best, expected)
    for name, found in (("whole text", whole_found), ("passages", passage_found)):
        first = sum(rank == 1 for rank in found)
        print(f"  {name:>10}: MRR@10 {mrr(found):.2f}, recall@10 {recall(found):.2f}, first for {first}")
    return mrr(whole_found), recall(whole_found), mrr(passage_found), recall(passage_found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="chunk a 10 MB record instead of 50 MB")
    args = parser.parse_args()
    from local.model import cpu, packaged

    print(f"cpu: {cpu.CpuInfo.of_this_machine().summary()}")
    tokenizer = packaged.sentence_transformers_folder() / "tokenizer.json"
    megabytes = 10 if args.quick else 50
    peak, correct = memory(megabytes, tokenizer)
    whole_mrr, _, passage_mrr, passage_recall = quality(tokenizer)
    verdict = {True: "PASS", False: "FAIL"}
    ratio = passage_mrr / whole_mrr if whole_mrr else float("inf")
    print(
        f"peak memory chunking a {megabytes} MB record: {peak:.0f} MB (target <= {MEMORY_TARGET_MB} MB): "
        f"{verdict[correct and peak <= MEMORY_TARGET_MB]}"
    )
    ratio_ok, recall_ok = ratio >= MRR_RATIO_TARGET, passage_recall >= RECALL_TARGET
    print(f"passages MRR@10 vs whole text: {ratio:.2f}x (target >= {MRR_RATIO_TARGET}x): {verdict[ratio_ok]}")
    print(f"passages recall@10: {passage_recall:.2f} (target >= {RECALL_TARGET}): {verdict[recall_ok]}")


if __name__ == "__main__":
    main()
