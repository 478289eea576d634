"""Local embedding throughput: length-sorted batches vs one text at a time, measured in the same run.

    .venv/bin/python bench/embed.py [--threads N]

Texts are generated from the model's own vocabulary with a fixed seed, so every run embeds the same texts:
short queries of 5-15 words and passages of about 100 words. "Per core" divides wall-clock docs/s by the
onnxruntime intra-op thread count, the cores one inference uses (os.cpu_count() is printed beside it).
Docs per CPU-second is printed too: on a machine shared with other work it is the steadier number.
Target: 300 short docs/s per core, batched, wall clock.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local.model import OnnxSentenceEmbedder, packaged

TARGET_SHORT_PER_CORE = 300.0
SEED = 20240601


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    args = parser.parse_args()

    embedder = OnnxSentenceEmbedder.default(threads=args.threads)
    rng = random.Random(SEED)
    words = word_list()
    cases = {
        "short (5-15 words)": (make_texts(words, 1200, 5, 15, rng), 300),
        "passage (~100 words)": (make_texts(words, 160, 90, 110, rng), 48),
    }

    def batched(texts: list[str]) -> object:
        return embedder.embed(texts)

    def naive(texts: list[str]) -> object:
        return [embedder.embed([text]) for text in texts]

    embedder.embed(make_texts(words, 64, 5, 110, rng))  # warm-up: first runs allocate and tune kernels
    threads = embedder.threads
    print(f"model: all-MiniLM-L6-v2 int8 ONNX, os.cpu_count()={os.cpu_count()}")
    print(f"per core = docs/s / {threads} (onnxruntime intra-op threads, not os.cpu_count())")
    header = ("texts", "batched docs/s", "naive docs/s", "batched/naive", "batched/core", "batched/cpu-s")
    print(f"{header[0]:<22}" + "".join(f"{column:>15}" for column in header[1:]))
    short_per_core = 0.0
    for name, (texts, naive_count) in cases.items():
        fast, fast_cpu = docs_per_second(batched, texts)
        slow, _ = docs_per_second(naive, texts[:naive_count])
        per_core = fast / threads
        if name.startswith("short"):
            short_per_core = per_core
        ratio = f"{fast / slow:.2f}x"
        print(f"{name:<22}{fast:>15.1f}{slow:>15.1f}{ratio:>15}{per_core:>15.1f}{fast_cpu:>15.1f}")
    verdict = "PASS" if short_per_core >= TARGET_SHORT_PER_CORE else "FAIL"
    print(f"{verdict}: {short_per_core:.1f} short docs/s per core (target {TARGET_SHORT_PER_CORE:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
