"""Build samples/ from the docstrings of Python's standard library.

Why this text: it is real prose about concrete topics (files, networking, dates, compression), it is
redistributable (Python Software Foundation License), and anyone can judge whether a search for
"read a gzip file" found the right thing. The output is committed; rerun only to change the sample.
"""

from __future__ import annotations

import importlib
import inspect
import json
import random
import re
import sys
import warnings
from pathlib import Path

SKIP = {
    "antigravity",
    "this",
    "idlelib",
    "tkinter",
    "turtle",
    "turtledemo",
    "lib2to3",
    "__main__",
    "test",
    "ensurepip",
}
OUT = Path(__file__).resolve().parent.parent / "samples" / "python-docs"


def docstrings() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in sorted(sys.stdlib_module_names):
        if name in SKIP or name.startswith("_"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except Exception:
            continue
        add(found, name, module)
        for attr, value in sorted(vars(module).items()):
            if attr.startswith("_") or getattr(value, "__module__", None) != name:
                continue
            add(found, f"{name}.{attr}", value)
            if inspect.isclass(value):
                for method, member in sorted(vars(value).items()):
                    if not method.startswith("_"):
                        add(found, f"{name}.{attr}.{method}", member)
    return found


def add(found: dict[str, str], qualified: str, value: object) -> None:
    doc = (
        inspect.getdoc(value)
        if callable(value) or inspect.isclass(value) or inspect.ismodule(value)
        else None
    )
    if not doc:
        return
    paragraph = re.sub(r"\s+", " ", doc.split("\n\n")[0]).strip()
    words = paragraph.split()
    if len(words) < 6 or paragraph.startswith(("Return self", "Implement ")) or "(" in words[0]:
        return
    found[qualified] = " ".join(words[:150])


def main() -> None:
    records = [{"_id": key, "text": text, "title": key} for key, text in docstrings().items()]
    unique = list({record["text"]: record for record in records}.values())
    random.Random(7).shuffle(unique)
    half = len(unique) // 2
    OUT.mkdir(parents=True, exist_ok=True)
    write(
        OUT / "part-1.jsonl",
        unique[:half],
        bad=[
            b'{"_id": "bad-json", "text": "an unterminated string}',
            b'{"text": "a record without an id"}',
            b'{"_id": "bad-text", "text": null}',
        ],
    )
    write(
        OUT / "part-2.jsonl",
        unique[half:],
        bad=[b'{"_id": "latin-1", "text": "caf\xe9 au lait"}', b"not json at all"],
    )
    (OUT / "empty.jsonl").write_bytes(b"")
    print(f"{len(unique)} records, 5 deliberately bad lines, written to {OUT}")


def write(path: Path, records: list[dict[str, str]], bad: list[bytes]) -> None:
    lines = [json.dumps(record, ensure_ascii=False).encode() for record in records]
    # Spread the bad lines through the file, as real bad data is; insert from the end so positions hold.
    step = len(lines) // (len(bad) + 1)
    for number, line in reversed(list(enumerate(bad, start=1))):
        lines.insert(number * step, line)
    path.write_bytes(b"\n".join(lines) + b"\n")


if __name__ == "__main__":
    main()
