"""Parsing one JSONL line into a record, with the reasons a person needs when it fails.

Prepare (user input) and ingest (model output) both parse lines here, so a line is judged the same way
at both ends of the pipeline; Prepare and `osbatch plan` (planning/plan.py) both check a record's id and
text here, so the plan's bad lines are the ones Prepare would dead-letter, for the same reasons.
"""

from __future__ import annotations

import json
from typing import Any

from osbatch import jsonlines
from osbatch.ingest.readers import OversizedLine
from osbatch.record_paths import MISSING, RecordPath

_JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    dict: "an object",
}


class RecordError(ValueError):
    """A line that cannot become a record. The message is the dead-letter reason."""

    def __init__(self, reason: str, parsed: Any = None) -> None:
        super().__init__(reason)
        self.parsed = parsed  # the value, when the line was JSON but not an object


def parse_record(raw: bytes, *, at_object_start: bool = False) -> dict[str, Any]:
    if isinstance(raw, OversizedLine):
        # Only its first bytes were kept (the dead letter's record); the rest was never held in memory.
        raise RecordError(f"the line is {raw.length} bytes, over the {raw.limit}-byte line limit")
    try:
        # Only an object's first line can carry a byte-order mark.
        text = raw.decode("utf-8-sig" if at_object_start else "utf-8")
    except UnicodeDecodeError as error:
        raise RecordError(f"not UTF-8: {error.reason} at byte {error.start}") from None
    try:
        value = jsonlines.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(f"malformed JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(value, dict):
        raise RecordError(f"expected a JSON object, got {json_type(value)}", parsed=value)
    return value


def original(raw: bytes, error: RecordError) -> Any:
    """What a dead letter keeps of a bad line: the parsed value when there is one, else the raw bytes."""
    return raw if error.parsed is None else error.parsed


def json_type(value: Any) -> str:
    return _JSON_KINDS.get(type(value), "null")


def _first(path: RecordPath, record: dict[str, Any]) -> Any:
    """The value at path; for an indefinite path (`$..text`), its first match."""
    value = path.lookup(record)
    if not path.definite and value is not MISSING:
        return value[0]
    return value


def require_id(record: dict[str, Any], path: RecordPath, expression: str) -> str:
    """The record's id as OpenSearch will store it (`_id` is a string: 7 and "7" are one document)."""
    value = _first(path, record)
    if value is MISSING:
        raise RecordError(f"missing id at {expression}")
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise RecordError(f"id at {expression} is {json_type(value)}, expected a non-empty string or number")
    return str(value)


def require_text(record: dict[str, Any], path: RecordPath, expression: str) -> str:
    value = _first(path, record)
    if value is MISSING:
        raise RecordError(f"missing text at {expression}")
    if not isinstance(value, str):
        raise RecordError(f"text at {expression} is {json_type(value)}, expected a string")
    return value
