"""JSON for `--json` and the choice between rich and plain text; standard library only at import."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

from cli.views import HIDDEN


def _jsonable(value: Any) -> Any:
    # DynamoDB numbers arrive as Decimal, nested ones too (remote_jobs); all of ours are counts or seconds.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, default=_jsonable, sort_keys=False)


def public(job: dict[str, Any]) -> dict[str, Any]:
    """A job item without its internal fields (the workflow's task token), as `--json` prints it."""
    return {key: value for key, value in job.items() if key not in HIDDEN}


def is_terminal() -> bool:
    """rich tables for a person at a terminal; plain lines for pipes, files and CI logs."""
    return sys.stdout.isatty()
