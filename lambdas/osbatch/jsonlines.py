"""JSON encoding and decoding for the record hot paths (prepare, ingest, dead letters).

orjson, because encoding float vectors dominates ingest: bench/ingest.py measures the whole ingest path
with it against the standard library, in the same run. Both reject NaN and Infinity on input (OpenSearch
would reject them later), and both raise json.JSONDecodeError, so callers see one error type.
"""

from __future__ import annotations

from typing import Any

import orjson


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. Non-string keys are an error, as they would be for OpenSearch."""
    return orjson.dumps(value)


def dump_line(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
