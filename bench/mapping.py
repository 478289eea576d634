"""Read, map and serialize 384-dim records: osbatch's ingest mapping against its limit and the obvious code.

(a) the limit: orjson loads + dumps of each line, no mapping at all;
(b) the obvious implementation: per document, `jsonpath_ng.parse(path).find(record)` for each field_map
    path, then `json.dumps` of the document;
(c) osbatch: parse_record, FieldMapper.map and the bulk action + source lines BulkWriter sends.
All three run over the same lines in one process, alternating, each the median of several repeats.

    .venv/bin/python bench/mapping.py [--lines 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

import jsonpath_ng  # noqa: E402
import orjson  # noqa: E402

from osbatch import jsonlines  # noqa: E402
from osbatch.field_map import FieldMapper  # noqa: E402
from osbatch.ingest.records import parse_record  # noqa: E402

FIELD_MAP = {
    "_id": "$._id",
    "chunk": "$.text",
    "chunk_embedding": "$.SageMakerOutput",
    "title": "$.meta.title",
}


def lines(count: int, dimension: int = 384) -> list[bytes]:
    rng = random.Random(7)
    return [
        orjson.dumps(
            {
                "_id": f"doc-{n}",
                "text": f"passage number {n} " * 8,
                "meta": {"title": f"title {n}", "lang": "en"},
                "SageMakerOutput": [rng.uniform(-1, 1) for _ in range(dimension)],
                "_osbatch": {"line": n + 1},
            }
        )
        for n in range(count)
    ]


def limit(data: list[bytes]) -> int:
    return sum(len(orjson.dumps(orjson.loads(line))) for line in data)


def obvious(data: list[bytes]) -> int:
    total = 0
    for raw in data:
        record = json.loads(raw)
        doc = {}
        doc_id = None
        for field, path in FIELD_MAP.items():
            matches = jsonpath_ng.parse(path).find(record)
            value = matches[0].value if matches else None
            if field == "_id":
                doc_id = value
            else:
                doc[field] = value
        total += len(json.dumps({"index": {"_id": doc_id}}) + "\n" + json.dumps(doc) + "\n")
    return total


def osbatch(data: list[bytes]) -> int:
    mapper = FieldMapper(FIELD_MAP)
    total = 0
    for raw in data:
        doc = mapper.map(parse_record(raw))
        total += len(jsonlines.dump_line({"index": {"_id": doc.doc_id}}) + jsonlines.dump_line(doc.body))
    return total


def rate(run: Callable[[list[bytes]], int], data: list[bytes]) -> float:
    start = time.perf_counter()
    run(data)
    return len(data) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = lines(args.lines)
    # The obvious implementation is slow; a tenth of the lines gives its rate as well.
    small = data[: max(1, len(data) // 10)]
    rates: dict[str, list[float]] = {"limit": [], "obvious": [], "osbatch": []}
    for _ in range(args.repeats):
        rates["limit"].append(rate(limit, data))
        rates["obvious"].append(rate(obvious, small))
        rates["osbatch"].append(rate(osbatch, data))
    median = {name: statistics.median(values) for name, values in rates.items()}
    size = sum(len(line) for line in data) / len(data)
    print(f"{args.lines} lines of {size / 1024:.1f} KiB (384-dim vectors), median of {args.repeats} runs:")
    for name, value in median.items():
        print(f"  {name:8s} {value:10.0f} records/s")
    of_limit = median["osbatch"] / median["limit"]
    over_obvious = median["osbatch"] / median["obvious"]
    print(f"osbatch vs orjson limit: {of_limit:.0%} (target >= 50%): {'PASS' if of_limit >= 0.5 else 'FAIL'}")
    print(
        f"osbatch vs obvious: {over_obvious:.1f}x (target >= 5x): {'PASS' if over_obvious >= 5 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
