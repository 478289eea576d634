"""What `osbatch import-osi` did with each field of the OSI pipeline: mapped (to which osbatch field), not
mapped (and why), and which osbatch fields it had to choose itself (and why).

Every leaf of the source document ends up named: `finish` names any field no rule looked at, so nothing is
dropped silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The reason given to a field no mapping rule knows.
NO_EQUIVALENT = "osbatch has no setting for this"
# Fields that come from beside the pipeline: the connector file and the command line.
SECONDARY = ("connector", "--")


@dataclass(frozen=True)
class Mapped:
    osi: str
    osbatch: str
    note: str = ""


@dataclass(frozen=True)
class Unmapped:
    osi: str
    reason: str


@dataclass(frozen=True)
class Defaulted:
    osbatch: str
    value: Any
    reason: str


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def leaves(value: Any, path: str) -> list[str]:
    """The paths of every scalar (or empty container) in `value`."""
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items() for leaf in leaves(item, join(path, str(key)))]
    if isinstance(value, list) and value:
        return [leaf for index, item in enumerate(value) for leaf in leaves(item, join(path, index))]
    return [path]


def _secondary(path: str) -> bool:
    return path.startswith(SECONDARY)


def _under(leaf: str, prefix: str) -> bool:
    return leaf == prefix or leaf.startswith((f"{prefix}.", f"{prefix}["))


@dataclass
class Notes:
    mapped: list[Mapped] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    defaulted: list[Defaulted] = field(default_factory=list)

    def map(self, osi: str, osbatch: str, note: str = "") -> None:
        self.mapped.append(Mapped(osi, osbatch, note))

    def skip(self, osi: str, reason: str) -> None:
        self.unmapped.append(Unmapped(osi, reason))

    def default(self, osbatch: str, value: Any, reason: str) -> None:
        self.defaulted.append(Defaulted(osbatch, value, reason))

    def finish(self, document: Any, root: str = "") -> None:
        """Name, as unmapped, every leaf of `document` that no rule mapped or skipped."""
        named = [note.osi for note in self.mapped] + [note.osi for note in self.unmapped]
        for leaf in leaves(document, root):
            if not any(_under(leaf, prefix) for prefix in named):
                self.skip(leaf, NO_EQUIVALENT)

    def sort(self) -> None:
        """The pipeline's own fields first, then the connector's and the command line's (stable)."""
        self.mapped.sort(key=lambda note: _secondary(note.osi))
        self.unmapped.sort(key=lambda note: _secondary(note.osi))

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "mapped": [asdict(note) for note in self.mapped],
            "unmapped": [asdict(note) for note in self.unmapped],
            "defaulted": [asdict(note) for note in self.defaulted],
        }
