"""The first OpenSearch download shows bytes done of total, read from Maven's own transfer output.

MAVEN_OUTPUT is what Maven 3.8.7 printed (stdout piped, not batch mode) fetching a 3 MB zip from a local
HTTP server, shortened: its "Progress" rewritten with carriage returns, then padding and "Downloaded".
"""

from __future__ import annotations

import stat
from pathlib import Path

from local.opensearch.artifacts import Artifact, download
from local.opensearch.transfer import MavenTransferReader, PlainTransfer, RichTransfer

URL = "http://127.0.0.1:8765/com/example/fake/1.0/fake-1.0.zip"
MAVEN_OUTPUT = (
    "[INFO] Configured Artifact: com.example:fake:1.0:zip\n"
    f"Downloading from local: {URL}\n"
    "Progress (1): 0/3.0 MB\rProgress (1): 0.1/3.0 MB\rProgress (1): 0.3/3.0 MB\rProgress (1): 0.6/3.0 MB\r"
    "Progress (1): 1.2/3.0 MB\rProgress (1): 1.5/3.0 MB\rProgress (1): 2.9/3.0 MB\rProgress (1): 3.0/3.0 MB\r"
    "Progress (1): 3.0 MB    \r                    \r"
    f"Downloaded from local: {URL} (3.0 MB at 17 MB/s)\n"
    "[INFO] Copying fake-1.0.zip to /tmp/out/fake-1.0.zip\n"
)
# Two at once, as Maven fetches a plugin's pom and jar: one "a/b unit" per transfer, in start order.
CONCURRENT = (
    "Downloading from central: https://repo/x/a-1.pom\n"
    "Downloading from central: https://repo/x/a-1.jar\n"
    "Progress (2): 13 kB | 4.1/35 kB\rProgress (2): 13 kB | 12/35 kB \r"
    "Downloaded from central: https://repo/x/a-1.pom (13 kB at 50 kB/s)\n"
    "Progress (1): 35 kB\r"
    "Downloaded from central: https://repo/x/a-1.jar (35 kB at 70 kB/s)\n"
)


class Recorded:
    """A display that keeps every update, to compare with what Maven printed."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, int, int | None]] = []
        self.closed = False

    def update(self, name: str, done: int, total: int | None) -> None:
        self.updates.append((name, done, total))

    def close(self) -> None:
        self.closed = True


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def test_maven_progress_becomes_bytes_done_of_total_however_the_output_is_cut() -> None:
    for size in (1, 7, len(MAVEN_OUTPUT)):
        # Given Maven's output arriving in pieces of this size
        shown = Recorded()
        reader = MavenTransferReader(shown)
        for piece in pieces(MAVEN_OUTPUT, size):
            reader.feed(piece)
        reader.close()
        # Then every progress step is the file's bytes done of its 3 MB, in order, ending at all of them
        with_total = [(done, total) for name, done, total in shown.updates if total is not None]
        assert {name for name, _, _ in shown.updates} == {"fake-1.0.zip"}, size
        assert with_total[0] == (0, 3_000_000) and with_total[-1] == (3_000_000, 3_000_000), size
        assert [done for done, _ in with_total] == sorted(done for done, _ in with_total), size
        assert (1_200_000, 3_000_000) in with_total, size


def test_concurrent_transfers_are_told_apart_by_their_start_order() -> None:
    shown = Recorded()
    reader = MavenTransferReader(shown)
    reader.feed(CONCURRENT)
    reader.close()
    assert ("a-1.jar", 12_000, 35_000) in shown.updates
    assert ("a-1.pom", 13_000, None) in shown.updates  # one size only: Maven gives no total there
    assert shown.updates[-1] == ("a-1.jar", 35_000, 35_000)  # its end, from "Downloaded"


def test_transfers_that_carry_their_file_name_are_read_too() -> None:
    # Given Maven printing resource names in its progress ("file (a/b unit)")
    shown = Recorded()
    reader = MavenTransferReader(shown)
    reader.feed(f"Downloading from local: {URL}\nProgress (1): fake-1.0.zip (1.2/3.0 MB)\r")
    reader.close()
    # Then the bytes are read as without names
    assert shown.updates == [("fake-1.0.zip", 1_200_000, 3_000_000)]


def test_plain_lines_come_at_each_tenth_and_at_the_end() -> None:
    # Given the plain display (stdout is not a terminal) fed Maven's output
    lines: list[str] = []
    reader = MavenTransferReader(PlainTransfer(lines.append))
    reader.feed(MAVEN_OUTPUT)
    reader.close()
    # Then each tenth reached is one line, a tenth reached twice is not repeated, and the end is 100 %
    assert lines == [
        "    fake-1.0.zip: 300.0 kB of 3.0 MB (10%)",
        "    fake-1.0.zip: 600.0 kB of 3.0 MB (20%)",
        "    fake-1.0.zip: 1.2 MB of 3.0 MB (40%)",
        "    fake-1.0.zip: 1.5 MB of 3.0 MB (50%)",
        "    fake-1.0.zip: 2.9 MB of 3.0 MB (96%)",
        "    fake-1.0.zip: 3.0 MB of 3.0 MB (100%)",
    ]


def test_rich_bars_show_bytes_of_total() -> None:
    from rich.console import Console

    console = Console(record=True, width=120, force_terminal=False)
    display = RichTransfer(console=console)
    reader = MavenTransferReader(display)
    reader.feed(MAVEN_OUTPUT)
    reader.close()
    display.close()
    text = console.export_text()
    assert "fake-1.0.zip" in text and "3.0/3.0 MB" in text


def fake_mvn(path: Path, output: str) -> Path:
    """An mvn that records its arguments, prints Maven's transfer output and copies the artifact."""
    printed = path.parent / "maven-output.txt"
    printed.write_text(output)
    path.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{path.parent}/args.txt"\n'
        f'cat "{printed}"\n'
        'for arg in "$@"; do\n'
        '  case "$arg" in -DoutputDirectory=*) dir="${arg#-DoutputDirectory=}";; esac\n'
        "done\n"
        'mkdir -p "$dir" && head -c 3000 /dev/zero > "$dir/fake-1.0.zip"\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_download_with_a_display_runs_maven_with_its_transfer_output_and_shows_it(tmp_path: Path) -> None:
    # Given an mvn that downloads the artifact as Maven 3.8.7 does
    mvn = fake_mvn(tmp_path / "mvn", MAVEN_OUTPUT)
    shown = Recorded()
    # When the artifact is fetched with a display
    path = download(Artifact("com.example", "fake", "1.0"), tmp_path / "out", str(mvn), shown)
    # Then mvn ran outside batch mode (which prints no transfers) and without colours, the display got the
    # bytes, and the artifact is where the caller expects it
    args = (tmp_path / "args.txt").read_text().split()
    assert "-B" not in args and "-q" not in args and "-Dstyle.color=never" in args
    assert shown.updates[-1] == ("fake-1.0.zip", 3_000_000, 3_000_000)
    assert path == tmp_path / "out" / "fake-1.0.zip" and path.is_file()


def test_download_without_a_display_stays_quiet(tmp_path: Path) -> None:
    mvn = fake_mvn(tmp_path / "mvn", MAVEN_OUTPUT)
    download(Artifact("com.example", "fake", "1.0"), tmp_path / "out", str(mvn))
    args = (tmp_path / "args.txt").read_text().split()
    assert "-q" in args and "-B" in args
