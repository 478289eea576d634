"""JSONPath lookups into one record, with the semantics field_map needs.

Paths made only of names and single indexes (`$.a.b[0]`, the near-universal case) are walked directly:
jsonpath-ng would index into strings (`$.a[0]` on "abc" gives "a"), raise on dicts and ints, and costs
several microseconds a path. Every other path (wildcards, slices, filters, `..`) goes to jsonpath-ng and
yields the list of all its matches, as ML Commons' JsonPath.read does for indefinite paths.
"""

from __future__ import annotations

from typing import Any, Final

from jsonpath_ng import JSONPath
from jsonpath_ng.jsonpath import Child, Descendants, Fields, Index, Root

from osbatch.jsonpaths import compile_path

MISSING: Final = object()
BOOKKEEPING_KEY: Final = "_osbatch"
ERROR_KEY: Final = "error"  # under BOOKKEEPING_KEY: the service's error for a joined record

Step = str | int


def _steps(node: JSONPath) -> tuple[Step, ...] | None:
    """The key/index sequence of a definite path, or None when the path can match more than one value."""
    if isinstance(node, Root):
        return ()
    if isinstance(node, Child):
        left, right = _steps(node.left), _steps(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, Fields) and len(node.fields) == 1 and node.fields[0] != "*":
        return (node.fields[0],)
    if isinstance(node, Index):
        indices = getattr(node, "indices", None) or (node.index,)
        return (indices[0],) if len(indices) == 1 else None
    return None


def _last_name(node: JSONPath) -> str | None:
    if isinstance(node, Fields):
        return node.fields[0] if len(node.fields) == 1 and node.fields[0] != "*" else None
    if isinstance(node, Child | Descendants):
        return _last_name(node.right) or _last_name(node.left)
    return None


class RecordPath:
    __slots__ = (
        "_jsonpath",
        "_steps",
        "expression",
        "last_name",
        "may_expose_bookkeeping",
        "reads_bookkeeping",
    )

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._jsonpath = compile_path(expression)
        self._steps = _steps(self._jsonpath)
        self.last_name = _last_name(self._jsonpath)
        # A path that names the bookkeeping key asked for it; every other path sees the record without it.
        self.reads_bookkeeping = BOOKKEEPING_KEY in expression
        # Only `$` itself and indefinite paths (`$.*`, `$..line`) can reach the key without naming it.
        self.may_expose_bookkeeping = not self.reads_bookkeeping and not self._steps

    @property
    def definite(self) -> bool:
        """A single-valued path (`$.a.b[0]`), as opposed to one that can match many (`$..a`, `$.*`)."""
        return self._steps is not None

    @property
    def names(self) -> tuple[str, ...] | None:
        """The field names of a path made of names only (`$.a.b`), else None."""
        steps = self._steps
        return steps if steps is not None and all(isinstance(step, str) for step in steps) else None  # type: ignore[return-value]

    def holding(self, value: Any) -> dict[str, Any]:
        """The smallest record in which this path of names finds value: `$.a.b` -> {a: {b: value}}."""
        names = self.names
        if not names:
            raise ValueError(f"{self.expression} is not a path of field names")
        record: dict[str, Any] = {names[-1]: value}
        for name in reversed(names[:-1]):
            record = {name: record}
        return record

    def lookup(self, record: dict[str, Any]) -> Any:
        """The value at this path, a list of values for an indefinite path, or MISSING."""
        if self._steps is not None:
            return _walk(record, self._steps)
        try:
            matches = self._jsonpath.find(record)
        except (KeyError, IndexError, TypeError, AttributeError):
            # jsonpath-ng raises on some type mismatches (an index into a dict or an int): "not found".
            return MISSING
        return [match.value for match in matches] if matches else MISSING


def _walk(value: Any, steps: tuple[Step, ...]) -> Any:
    for step in steps:
        if isinstance(step, str):
            if not isinstance(value, dict) or step not in value:
                return MISSING
            value = value[step]
        else:
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return MISSING
            value = value[step]
    return value


def inference_error(record: dict[str, Any]) -> str | None:
    """The service's error a joined record carries, as a dead letter's reason; None for a result."""
    bookkeeping = record.get(BOOKKEEPING_KEY)
    error = bookkeeping.get(ERROR_KEY) if isinstance(bookkeeping, dict) else None
    if not isinstance(error, dict):
        return None
    return f"{error.get('code')}: {error.get('message')}"
