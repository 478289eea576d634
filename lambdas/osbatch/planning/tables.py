"""The dated, cited tables a plan is priced and timed by: prices.yaml and throughput.yaml beside this module.

Every entry carries the `date` its figure was read and its `source`, and the plan names both beside every
figure it derives; an entry without either is refused (TableError), so no estimate rests on a figure nobody
can date. A user's file of the same shape overrides or adds entries (`osbatch plan --prices/--throughput`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from osbatch.strict import Strict

HERE = Path(__file__).resolve().parent
PRICES = HERE / "prices.yaml"
THROUGHPUT = HERE / "throughput.yaml"


class TableError(ValueError):
    """A price or throughput table the plan cannot rely on; the message names the entry and the fix."""


class Dated(Strict):
    date: datetime.date = Field(description="when the figure was read from its source")
    source: str = Field(min_length=1, description="a URL, or the bench of this repository that measured it")


class Price(Dated):
    usd: float = Field(ge=0)
    per: Literal["instance_hour", "million_tokens"]
    vcpus: int | None = Field(None, ge=1, description="an instance's vCPUs (instance_hour prices)")


class Rate(Dated):
    value: float = Field(gt=0)
    kind: Literal["measured", "documented", "assumption"]
    basis: str = ""


# backend (or "ingest") -> entry name (instance type, model, rate name) -> entry
Prices = dict[str, dict[str, Price]]
Rates = dict[str, dict[str, Rate]]


# An override: a file of the table's shape, or (where, its sections) from a pipeline config's `estimates`.
Override = Path | tuple[str, Mapping[str, Any]]


def load_prices(*overrides: Override) -> Prices:
    return _load(Price, PRICES, overrides)


def load_rates(*overrides: Override) -> Rates:
    return _load(Rate, THROUGHPUT, overrides)


def _load(kind: type[Dated], base: Path, overrides: tuple[Override, ...]) -> Any:
    table: dict[str, dict[str, Any]] = {}
    for override in (base, *overrides):
        path, sections = (override, _read(override)) if isinstance(override, Path) else override
        for section, entries in sections.items():
            if not isinstance(entries, dict):
                raise TableError(f"{path}: {section} must map names to entries")
            for name, entry in entries.items():
                table.setdefault(str(section), {})[str(name)] = _entry(kind, path, f"{section}.{name}", entry)
    return table


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        raise TableError(f"{path}: not YAML: {error}") from None
    if not isinstance(data, dict):
        raise TableError(f"{path}: expected a mapping of sections")
    return data


def _entry(kind: type[Dated], path: Path | str, where: str, entry: Any) -> Dated:
    if isinstance(entry, dict) and "date" not in entry:
        raise TableError(
            f"{path}: {where} has no date: every figure names the date it was read from its source "
            "(date: YYYY-MM-DD)"
        )
    try:
        return kind.model_validate(entry)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in error.errors())
        raise TableError(f"{path}: {where}: {problems}") from None
