"""Local embedding throughput: the packaged MiniLM in length-sorted batches against one text at a time.

    .venv/bin/python bench/embed.py [--threads N] [--repeats N] [--quick]

Texts are generated from the model's own vocabulary with a fixed seed, so every run embeds the same texts:
short queries of 5-15 words and passages of about 100 words. The embedder is what local mode runs
(OnnxSentenceEmbedder.default(): the packaged graph as shipped, fp32 products). The baseline, measured in
the same run and interleaved with it, is the same embedder called one text at a time, as a naive caller
would: no batching, no length sorting.

"Per core" is docs per CPU-second: texts divided by the CPU time of this process (time.process_time, all
its threads), i.e. what one core kept busy delivers. On a machine shared with other work it is the steadier
number: time the scheduler gives to other processes is not counted. Wall-clock docs/s is printed beside it,
and wall docs/s divided by the intra-op threads (1 by default, so that both figures measure one core).
Each figure is the median of --repeats runs. --quick embeds a quarter of the texts, twice.

The last two lines are the verdicts: the lowest cosine against the sentence-transformers reference vectors
(target 0.99), and short texts batched against one at a time, per CPU-second (target 1.5x), a PASS only if
the cosine is one too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_summary  # noqa: E402
from local.model import OnnxSentenceEmbedder, packaged  # noqa: E402

TARGET_MIN_COSINE = 0.99
TARGET_BATCHED_OVER_NAIVE = 1.5
SEED = 20240601
REFERENCE = ROOT / "tests" / "fixtures" / "minilm_reference.jsonl"
# (texts, of which the one-at-a-time baseline embeds) per case, full and --quick
SIZES = {False: {"short": (1200, 300), "passage": (160, 48)}, True: {"short": (300, 75), "passage": (40, 12)}}


def word_list() -> list[str]:
    """Whole English words from the model's WordPiece vocabulary: realistic token counts, no download."""
    vocab = (packaged.sentence_transformers_folder() / "vocab.txt").read_text(encoding="utf-8").split()
    return [word for word in vocab if word.isalpha() and word.isascii() and len(word) >= 3]


def make_texts(words: list[str], count: int, low: int, high: int, rng: random.Random) -> list[str]:
    return [" ".join(rng.choices(words, k=rng.randint(low, high))) for _ in range(count)]


def docs_per_second(run: Callable[[list[str]], object], texts: list[str]) -> tuple[float, float]:
    """(docs per wall-clock second, docs per CPU-second of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run(texts)
    return len(texts) / (time.perf_counter() - wall), len(texts) / (time.process_time() - cpu)


def one_at_a_time(embedder: OnnxSentenceEmbedder) -> Callable[[list[str]], object]:
    return lambda texts: [embedder.embed([text]) for text in texts]


def min_reference_cosine(embedder: OnnxSentenceEmbedder) -> float:
    """Lowest cosine against the sentence-transformers fp32 vectors the tests check (20 texts)."""
    rows = [json.loads(line) for line in REFERENCE.read_text(encoding="utf-8").splitlines() if line.strip()]
    expected = np.array([row["embedding"] for row in rows], dtype=np.float32)
    actual = embedder.embed([row["text"] for row in rows])
    return float(((actual * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)).min())


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure; medians are printed")
    parser.add_argument("--quick", action="store_true", help="a quarter of the texts, 2 repeats")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    sizes = SIZES[args.quick]

    print(f"cpu: {cpu_summary()}")
    embedder = OnnxSentenceEmbedder.default(threads=args.threads)
    rng = random.Random(SEED)
    words = word_list()
    cases = {  # texts, and how many of them the one-at-a-time run embeds
        "short (5-15 words)": (make_texts(words, sizes["short"][0], 5, 15, rng), sizes["short"][1]),
        "passage (~100 words)": (make_texts(words, sizes["passage"][0], 90, 110, rng), sizes["passage"][1]),
    }
    embedder.embed(make_texts(words, 64, 5, 110, rng))  # first runs allocate and tune kernels

    # (case, "batched"|"naive") -> [(wall docs/s, cpu docs/s)], interleaved against drift
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(repeats):
        for case, (texts, naive_count) in cases.items():
            runs.setdefault((case, "batched"), []).append(docs_per_second(embedder.embed, texts))
            runs.setdefault((case, "naive"), []).append(
                docs_per_second(one_at_a_time(embedder), texts[:naive_count])
            )

    def median(case: str, how: str, cpu: bool = False) -> float:
        return statistics.median(figures[1 if cpu else 0] for figures in runs[(case, how)])

    threads = args.threads
    print(
        f"model: all-MiniLM-L6-v2 as shipped, onnxruntime intra-op threads={threads}, "
        f"os.cpu_count()={os.cpu_count()}"
    )
    print("per core = docs per CPU-second of this process (all threads); wall/thread = wall docs/s / threads")
    print(f"medians of {repeats} runs")
    header = ("texts", "batched docs/s", "naive docs/s", "wall/thread", "per core", "naive per core")
    print(f"{header[0]:<22}" + "".join(f"{column:>16}" for column in header[1:]))
    for case in cases:
        fast = median(case, "batched")
        figures = (
            f"{fast:.1f}",
            f"{median(case, 'naive'):.1f}",
            f"{fast / threads:.1f}",
            f"{median(case, 'batched', cpu=True):.1f}",
            f"{median(case, 'naive', cpu=True):.1f}",
        )
        print(f"{case:<22}" + "".join(f"{figure:>16}" for figure in figures))
    short = next(iter(cases))
    # Per repeat, so that both sides of each ratio ran under the same load.
    ratio = statistics.median(
        batched[1] / naive[1]
        for batched, naive in zip(runs[(short, "batched")], runs[(short, "naive")], strict=True)
    )
    cosine = min_reference_cosine(embedder)
    correct = cosine >= TARGET_MIN_COSINE
    fast_enough = ratio >= TARGET_BATCHED_OVER_NAIVE
    print(
        f"min cosine vs sentence-transformers, 20 reference vectors: {cosine:.4f} "
        f"(target >= {TARGET_MIN_COSINE}): {'PASS' if correct else 'FAIL'}"
    )
    print(
        f"short texts batched vs one at a time, docs per CPU-second: {ratio:.2f}x "
        f"(target >= {TARGET_BATCHED_OVER_NAIVE}x): {'PASS' if fast_enough and correct else 'FAIL'}"
    )
    return 0 if correct and fast_enough else 1


if __name__ == "__main__":
    sys.exit(main())
