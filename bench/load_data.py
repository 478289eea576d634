"""The load runs' input, generated deterministically and streamed to disk (never held in memory whole).

Record n (0-based) is line n + 1 of its file and has the id `load-<n, 8 digits>`, so the accounting
(bench/load_accounting.py) maps an id back to its line without reading the file again, and can regenerate
any record to check what the index holds.

- vector files: `{"_id", "vector"}` with a `dim`-dimension vector of values in [-1, 1) with 4 decimals,
  drawn block by block (BLOCK records per numpy generator seeded by the block's number): what a model's
  output carries when the embedding was computed elsewhere, for `osbatch batch-ingest --stack`. Four
  decimals keep a 64-dimension line near 500 bytes (full float32 precision nearly triples it), so a million
  records are about half a gigabyte on disk and in the emulated S3;
- text files: `{"_id", "text"}` with a short text of 5 to 15 words, for the full path through inference.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson

BLOCK = 1000  # records drawn per generator call: fast to write, cheap to regenerate for one record
SEED = 20_261_207
DECIMALS = 4
ID_PREFIX = "load-"
ID_DIGITS = 8
# Common English words: short texts MiniLM embeds in a few milliseconds each, like the queries the embed
# bench times (bench/embed.py).
WORDS = tuple(
    " ".join(
        (
            "index search vector record batch model text query document field shard node cluster",
            "write read file object bucket stream chunk token embed score rank match filter merge",
            "refresh replica segment graph layer neighbour distance space cosine inner product engine",
            "lucene faiss method memory disk cache queue thread request response retry backoff limit",
            "quota job part output input line key value",
        )
    ).split()
)


def doc_id(number: int) -> str:
    return f"{ID_PREFIX}{number:0{ID_DIGITS}d}"


def record_number(identifier: str) -> int | None:
    """The record an id names, or None when no generated record has this id."""
    digits = identifier.removeprefix(ID_PREFIX)
    if identifier == digits or len(digits) != ID_DIGITS or not digits.isdigit():
        return None
    return int(digits)


def vector_block(block: int, dim: int, count: int = BLOCK) -> np.ndarray:
    """The block's vectors as the file holds them: doubles of 4 decimals."""
    rng = np.random.default_rng((SEED, block))
    return np.round(rng.uniform(-1, 1, (count, dim)), DECIMALS)


def vector_of(number: int, dim: int) -> np.ndarray:
    """Record `number`'s vector as the index holds it: float32 (the k-NN plugin's type)."""
    block, offset = divmod(number, BLOCK)
    return vector_block(block, dim, offset + 1)[offset].astype(np.float32)


def text_of(number: int) -> str:
    rng = np.random.default_rng((SEED + 1, number))
    words = rng.choice(len(WORDS), size=int(rng.integers(5, 16)))
    return f"{number} " + " ".join(WORDS[w] for w in words)


def vector_lines(records: int, dim: int) -> Iterator[bytes]:
    for block in range(0, (records + BLOCK - 1) // BLOCK):
        count = min(BLOCK, records - block * BLOCK)
        for offset, vector in enumerate(vector_block(block, dim, count).tolist()):
            yield orjson.dumps(
                {"_id": doc_id(block * BLOCK + offset), "vector": vector}, option=orjson.OPT_APPEND_NEWLINE
            )


def text_lines(records: int) -> Iterator[bytes]:
    for number in range(records):
        yield orjson.dumps({"_id": doc_id(number), "text": text_of(number)}, option=orjson.OPT_APPEND_NEWLINE)


def write_lines(path: Path, lines: Iterator[bytes]) -> int:
    """Stream the lines to `path`; its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb", buffering=4 * 2**20) as out:
        for line in lines:
            out.write(line)
    return path.stat().st_size
