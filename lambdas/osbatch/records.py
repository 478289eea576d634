"""Parsing one JSONL line into a record, with the reasons a person needs when it fails."""

from __future__ import annotations

import json
from typing import Any


class RecordError(ValueError):
    """A line that cannot become a record. The message is the dead-letter reason."""


def parse_json_line(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordError(f"not UTF-8: {error.reason} at byte {error.start}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(f"malformed JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(value, dict):
        raise RecordError(f"expected a JSON object, got {_json_type(value)}")
    return value


def raw_record(raw: bytes) -> Any:
    """What a dead letter keeps of a line: the parsed value when possible, else the text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def json_type(value: Any) -> str:
    return "an object" if isinstance(value, dict) else _json_type(value)
