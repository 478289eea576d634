"""Read, map and serialize 384-dim records: osbatch's ingest mapping against its limit and the obvious code.

(a) the limit: orjson loads + dumps of each line, no mapping at all;
(b) the obvious implementation: per document, `jsonpath_ng.parse(path).find(record)` for each field_map
    path, then `json.dumps` of the document;
(c) osbatch: parse_record, FieldMapper.map and the bulk action + source lines BulkWriter sends.
All three run over the same lines in one process, alternating, each the median of several repeats.
Before any clock starts, (b) and (c) must give the same bulk action and document for the first lines.

    .venv/bin/python bench/mapping.py [--lines 20000] [--repeats 5] [--quick]

--quick: 2,000 lines, 3 repeats.
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

from bench.machine import cpu_summary  # noqa: E402
from osbatch import jsonlines  # noqa: E402
from osbatch.field_map import FieldMapper  # noqa: E402
from osbatch.ingest.records import parse_record  # noqa: E402

CHECKED_LINES = 50
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


def obvious_lines(raw: bytes) -> str:
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
    return json.dumps({"index": {"_id": doc_id}}) + "\n" + json.dumps(doc) + "\n"


def obvious(data: list[bytes]) -> int:
    return sum(len(obvious_lines(raw)) for raw in data)


def osbatch_lines(mapper: FieldMapper, raw: bytes) -> bytes:
    doc = mapper.map(parse_record(raw))
    return jsonlines.dump_line({"index": {"_id": doc.doc_id}}) + jsonlines.dump_line(doc.body)


def osbatch(data: list[bytes]) -> int:
    mapper = FieldMapper(FIELD_MAP)
    return sum(len(osbatch_lines(mapper, raw)) for raw in data)


def same_documents(data: list[bytes]) -> bool:
    """Whether osbatch sends, for every line, the action and document the obvious code sends."""
    mapper = FieldMapper(FIELD_MAP)
    for raw in data:
        ours = [orjson.loads(line) for line in osbatch_lines(mapper, raw).splitlines()]
        theirs = [json.loads(line) for line in obvious_lines(raw).splitlines()]
        if ours != theirs:
            return False
    return True


def rate(run: Callable[[list[bytes]], int], data: list[bytes]) -> float:
    start = time.perf_counter()
    run(data)
    return len(data) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=None, help="default 20000 (--quick 2000)")
    parser.add_argument("--repeats", type=int, default=None, help="default 5 (--quick 3)")
    parser.add_argument("--quick", action="store_true", help="a smaller run for a first look")
    args = parser.parse_args()
    count = args.lines or (2000 if args.quick else 20000)
    repeats = args.repeats or (3 if args.quick else 5)
    print(f"cpu: {cpu_summary()}")
    data = lines(count)
    checked = data[:CHECKED_LINES]  # the obvious code's jsonpath parsing takes tens of ms a line
    correct = same_documents(checked)
    print(f"osbatch's actions and documents equal the obvious code's, first {len(checked)} lines: {correct}")
    # The obvious implementation is slow; a tenth of the lines gives its rate as well.
    small = data[: max(1, len(data) // 10)]
    rates: dict[str, list[float]] = {"limit": [], "obvious": [], "osbatch": []}
    for _ in range(repeats):
        rates["limit"].append(rate(limit, data))
        rates["obvious"].append(rate(obvious, small))
        rates["osbatch"].append(rate(osbatch, data))
    median = {name: statistics.median(values) for name, values in rates.items()}
    size = sum(len(line) for line in data) / len(data)
    print(f"{count} lines of {size / 1024:.1f} KiB (384-dim vectors), median of {repeats} runs:")
    for name, value in median.items():
        print(f"  {name:8s} {value:10.0f} records/s")
    of_limit = median["osbatch"] / median["limit"]
    over_obvious = median["osbatch"] / median["obvious"]
    verdict = {True: "PASS", False: "FAIL"}
    near_limit, over = correct and of_limit >= 0.5, correct and over_obvious >= 5
    print(f"osbatch vs orjson limit: {of_limit:.0%} (target >= 50%): {verdict[near_limit]}")
    print(f"osbatch vs obvious: {over_obvious:.1f}x (target >= 5x): {verdict[over]}")
    return 0 if near_limit and over else 1


if __name__ == "__main__":
    sys.exit(main())
