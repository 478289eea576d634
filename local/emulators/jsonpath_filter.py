"""The JSONPath subset of SageMaker's InputFilter and OutputFilter, with SageMaker's result shapes.

"Associate Prediction Results with Input Records", section "Supported JSONPath Operators"
(https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html): `$`, `.<name>`, `*`,
`['<name>'(,'<name>')]`, `[<number>(,<number>)]` and `[<start>:<end>]`, e.g. `$`, `$.features`, `$[1:]`,
`$[0,5:]`, `$['id','SageMakerOutput']`.

Unlike a generic JSONPath library (which returns a list of matches), a filter here returns one JSON value:
several names select a smaller object (`$['id','SageMakerOutput']` -> {"id":…, "SageMakerOutput":…}), several
indexes or slices a smaller array, one name or index the value itself. A path that selects nothing is an
error, as SageMaker reports indexes outside the joined data as an error (DataProcessing.OutputFilter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"\.([A-Za-z_][\w-]*|\*)")
_BRACKET = re.compile(r"\[([^\]]*)\]")
_QUOTED = re.compile(r"""^\s*(?:'([^']*)'|"([^"]*)")\s*$""")
_INDEX = re.compile(r"^\s*(-?\d+)\s*$")
_SLICE = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*$")


class JsonPathError(ValueError):
    """The expression is outside the supported subset (raised when a job is created)."""


class JsonPathMiss(LookupError):
    """The expression selects nothing in this record (fails the job, like SageMaker)."""


@dataclass(frozen=True)
class _Step:
    kind: str  # "name", "names", "index", "indexes", "all"
    names: tuple[str, ...] = ()
    parts: tuple[int | slice, ...] = ()


class JsonPathFilter:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._steps = _parse(expression)

    @property
    def is_identity(self) -> bool:
        return not self._steps

    def select(self, value: Any) -> Any:
        for step in self._steps:
            value = _apply(step, value, self.expression)
        return value

    def __repr__(self) -> str:
        return f"JsonPathFilter({self.expression!r})"


def _parse(expression: str) -> list[_Step]:
    text = expression.strip()
    if not text.startswith("$"):
        raise JsonPathError(f"JSONPath must start with '$': {expression!r}")
    steps: list[_Step] = []
    position = 1
    while position < len(text):
        name = _NAME.match(text, position)
        bracket = _BRACKET.match(text, position)
        if name:
            steps.append(_Step("all") if name.group(1) == "*" else _Step("name", names=(name.group(1),)))
            position = name.end()
        elif bracket:
            steps.append(_parse_bracket(bracket.group(1), expression))
            position = bracket.end()
        else:
            raise JsonPathError(f"unsupported JSONPath {expression!r} at position {position}")
    # A multi-selection yields a new array or object; stepping into it would need per-item mapping,
    # which SageMaker's examples never do, so it may only come last.
    if any(step.kind in {"names", "indexes", "all"} for step in steps[:-1]):
        raise JsonPathError(f"unsupported JSONPath {expression!r}: '*' and lists may only come last")
    return steps


def _parse_bracket(inner: str, expression: str) -> _Step:
    if inner.strip() == "*":
        return _Step("all")
    items = inner.split(",")
    quoted = [_QUOTED.match(item) for item in items]
    if all(quoted):
        names = tuple(
            match.group(1) if match.group(1) is not None else match.group(2) for match in quoted if match
        )
        return _Step("name" if len(names) == 1 else "names", names=names)
    parts: list[int | slice] = []
    for item in items:
        index = _INDEX.match(item)
        span = _SLICE.match(item)
        if index:
            parts.append(int(index.group(1)))
        elif span:
            start, stop = (int(bound) if bound is not None else None for bound in span.groups())
            parts.append(slice(start, stop))
        else:
            raise JsonPathError(f"unsupported JSONPath {expression!r}: [{inner}]")
    single = len(parts) == 1 and isinstance(parts[0], int)
    return _Step("index" if single else "indexes", parts=tuple(parts))


def _apply(step: _Step, value: Any, expression: str) -> Any:
    if step.kind in {"name", "names"}:
        if not isinstance(value, dict):
            raise JsonPathMiss(f"{expression} expects an object, found {type(value).__name__}")
        missing = [name for name in step.names if name not in value]
        if missing:
            raise JsonPathMiss(f"{expression} found no {missing[0]!r}")
        return value[step.names[0]] if step.kind == "name" else {name: value[name] for name in step.names}
    if step.kind == "all":
        if isinstance(value, dict):
            return list(value.values())
        if isinstance(value, list):
            return value
        raise JsonPathMiss(f"{expression} expects an object or array, found {type(value).__name__}")
    if not isinstance(value, list):
        raise JsonPathMiss(f"{expression} expects an array, found {type(value).__name__}")
    selected: list[Any] = []
    for part in step.parts:
        if isinstance(part, int):
            if not -len(value) <= part < len(value):
                raise JsonPathMiss(f"{expression}: index {part} is outside an array of {len(value)}")
            selected.append(value[part])
        else:
            selected.extend(value[part])
    return selected[0] if step.kind == "index" else selected
