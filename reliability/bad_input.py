"""Scenario a: bad input, end to end. Every kind of bad line a user's file can hold, uploaded at once with
good records around them, through Prepare, the SageMaker emulator's MiniLM and the bulk ingest."""

from __future__ import annotations

import gzip
import json
from typing import Any

from reliability.harness import Upload

GOOD_VECTOR = [0.1, 0.2, 0.3, 0.4]  # the pipeline's 4-dimension `vector` field
TEN_MB = 10 * 1024 * 1024


def record(doc_id: str, text: str, vector: Any = None, **extra: Any) -> dict[str, Any]:
    return {"_id": doc_id, "text": text, "vector": GOOD_VECTOR if vector is None else vector, **extra}


def line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def good(tag: str, count: int) -> list[bytes]:
    return [line(record(f"{tag}-{n}", f"{tag} record number {n} about reading files")) for n in range(count)]


def bad_input_uploads(scale: int = 1) -> list[Upload]:
    """The bad files; `scale` multiplies the good records around the bad ones."""
    n = 20 * scale
    encodings = (
        b"\xef\xbb\xbf"  # a UTF-8 byte-order mark before the first record
        + b"\r\n".join(good("crlf", n))  # CRLF line ends
        + b"\r\n"
        + b'{"_id": "latin1", "text": "caf\xe9 au lait", "vector": [0.1, 0.2, 0.3, 0.4]}\r\n'  # not UTF-8
        + line(record("truncated", "the last line stops mid-record"))[:30]  # no newline, cut short
    )
    vectors = b"\n".join(
        [
            *good("vec", n),
            b'{"_id": "vec-nan", "text": "a NaN in the vector", "vector": [NaN, 0.2, 0.3, 0.4]}',
            b'{"_id": "vec-inf", "text": "Infinity", "vector": [Infinity, 0.2, 0.3, -Infinity]}',
            line(record("vec-dim5", "five dimensions for a four-dimension field", [0.1, 0.2, 0.3, 0.4, 0.5])),
            line(record("vec-dim3", "three dimensions", [0.1, 0.2, 0.3])),
        ]
    )
    big = b"\n".join(
        [
            *good("big", n),
            line(record("big-10mb", "x" * TEN_MB)),  # one 10 MB line among ordinary ones
            *good("big-after", 2),
        ]
    )
    odd_keys = b"\n".join(
        [
            *good("dup", n),
            line(record("dup-0", "the same id again, later in the file: this one wins")),
            line(record("dup-1", "and again")),
            line(
                record(
                    "ünï-cödé id",
                    "an id with spaces and non-ASCII",
                    **{"a key with spaces": 1, "ключ": "значение"},
                )
            ),
        ]
    )
    return [
        Upload("bom crlf utf8 truncated.jsonl", encodings + b""),
        Upload("vectors.jsonl", vectors + b"\n"),
        Upload("big-line.jsonl", big + b"\n"),
        Upload("dupes and ümlauts/naïve résumé 東京.jsonl", odd_keys + b"\n"),
        Upload("empty.jsonl", b""),
        Upload("actually-gzip.jsonl", gzip.compress(b"\n".join(good("gz", n)) + b"\n")),
    ]
