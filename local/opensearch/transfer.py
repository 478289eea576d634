"""Bytes done of the first download, read from Maven's own transfer output.

The node's artifacts come through mvn (artifacts.py), so that ~/.m2/settings.xml mirrors and proxies
apply. Outside batch mode (-B) Maven's console transfer listener prints, on stdout whether or not it is
a terminal, "Downloading from <repo>: <url>", then "Progress (N): <done>/<total> <unit>" rewritten with
carriage returns (one "a/b unit" per concurrent transfer, joined by " | "), then "Downloaded from
<repo>: <url> (<size> at <speed>)". Sizes are decimal (1 kB = 1000 B). Where Maven prints resource names
(its ConsoleMavenTransferListener's printResourceNames), a transfer reads "<file> (<done>/<total> <unit>)".
Checked against Maven 3.8.7 fetching a 3 MB and a 30 MB zip from a local HTTP server
(tests/local/unit/test_download_progress.py replays its output).

A display shows them: rich bars at a terminal (rich.readthedocs.io, "Progress Display"), else one plain
line per tenth of each file, so a log of a first `osbatch up` shows the 570 MB coming in.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any, Protocol

UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}
_SIZE = r"(\d+(?:\.\d+)?)"
_TRANSFER = re.compile(rf"^{_SIZE}(?:/{_SIZE})?\s*(B|kB|MB|GB)$")
_STARTED = re.compile(r"^Downloading from [^:]+: (\S+)")
_NAMED = re.compile(r"^(\S+) \((.+)\)$")
_ENDED = re.compile(rf"^Downloaded from [^:]+: (\S+) \({_SIZE} (B|kB|MB|GB)")
PLAIN_STEPS = 10  # plain lines per file: one at every tenth


class TransferDisplay(Protocol):
    def update(self, name: str, done: int, total: int | None) -> None: ...

    def close(self) -> None: ...


class MavenTransferReader:
    """Fed mvn's output as it arrives; tells the display each file's bytes done and total."""

    def __init__(self, display: TransferDisplay) -> None:
        self._display = display
        self._pending = ""
        self._current: list[str] = []  # files downloading now, in the order Maven started them

    def feed(self, text: str) -> None:
        pieces = re.split(r"[\r\n]", self._pending + text)
        self._pending = pieces.pop()
        for piece in pieces:
            self._line(piece.strip())

    def close(self) -> None:
        self._line(self._pending.strip())
        self._pending = ""

    def _line(self, line: str) -> None:
        # "Progress (1): 3.0 MB" and the next message can share a line: Maven pads over the progress
        # with spaces and a carriage return, but "Downloaded ..." may follow the padding directly.
        for part in re.split(r"\s{2,}", line):
            self._part(part.strip())

    def _part(self, part: str) -> None:
        if started := _STARTED.match(part):
            self._current.append(_name(started.group(1)))
        elif ended := _ENDED.match(part):
            name = _name(ended.group(1))
            size = _bytes(ended.group(2), ended.group(3))
            self._display.update(name, size, size)
            if name in self._current:
                self._current.remove(name)
        elif part.startswith("Progress (") and "): " in part:
            transfers = part.split("): ", 1)[1].split(" | ")
            for name, transfer in zip(self._current, transfers, strict=False):
                if named := _NAMED.match(transfer.strip()):  # "name (a/b unit)": Maven with resource names
                    name, transfer = named.groups()
                self._progress(name, transfer.strip())

    def _progress(self, name: str, transfer: str) -> None:
        match = _TRANSFER.match(transfer)
        if match is None:
            return
        first, second, unit = match.groups()
        if second is None:  # total unknown, or the transfer is complete: only one size
            self._display.update(name, _bytes(first, unit), None)
        else:
            self._display.update(name, _bytes(first, unit), _bytes(second, unit))


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _bytes(number: str, unit: str) -> int:
    return round(float(number) * UNITS[unit])


def human(size: int) -> str:
    """As Maven writes sizes: decimal units, one decimal place."""
    for unit in ("GB", "MB", "kB"):
        if size >= UNITS[unit]:
            return f"{size / UNITS[unit]:.1f} {unit}"
    return f"{size} B"


class PlainTransfer:
    """A line per tenth of each file (and at its end), through the caller's progress printer."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say
        self._shown: dict[str, int] = {}  # file -> tenths already shown

    def update(self, name: str, done: int, total: int | None) -> None:
        if not total:
            return  # without a total there is no fraction to report; the end line gives the size
        tenths = min(PLAIN_STEPS, done * PLAIN_STEPS // total)
        if tenths > self._shown.get(name, -1) and (tenths > 0 or done == total):
            self._shown[name] = tenths
            self._say(f"    {name}: {human(done)} of {human(total)} ({done * 100 // total}%)")

    def close(self) -> None:
        pass


class RichTransfer:
    """One bar per file: bytes done of total, speed and time left."""

    def __init__(self, console: Any = None) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("    {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._tasks: dict[str, Any] = {}
        self._progress.start()

    def update(self, name: str, done: int, total: int | None) -> None:
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(name, total=total)
        self._progress.update(self._tasks[name], completed=done, total=total)

    def close(self) -> None:
        self._progress.stop()


def transfer_display(say: Callable[[str], None]) -> TransferDisplay:
    """Rich bars when stdout is a terminal, else plain lines through `say`."""
    return RichTransfer() if sys.stdout.isatty() else PlainTransfer(say)
