"""Assembling the node from its zips, with a stand-in mvn and distribution (no network, no Java)."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from local.opensearch.artifacts import DISTRIBUTION, OPENSEARCH_VERSION, PLUGINS
from local.opensearch.errors import SetupError
from local.opensearch.install import MARKER, assemble, is_installed, opensearch_home
from local.opensearch.java import JavaRuntime

JAVA = JavaRuntime(Path("/opt/jdk-21"), 21, frozenset({"java.base"}))
TOP = f"opensearch-{OPENSEARCH_VERSION}"


def executable(text: str) -> tuple[str, int]:
    return text, 0o755


def write_zip(path: Path, files: dict[str, tuple[str, int]]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, (text, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A stand-in Maven repository: the distribution and plugin zips, and an mvn that copies from it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    plugin_tool = 'echo "$3 java=$OPENSEARCH_JAVA_HOME" >> "$(dirname "$0")/../installed.txt"\n'
    write_zip(
        repo / DISTRIBUTION.filename,
        {
            f"{TOP}/bin/opensearch": executable("#!/bin/sh\n"),
            f"{TOP}/bin/opensearch-plugin": executable("#!/bin/sh\n" + plugin_tool),
            f"{TOP}/config/jvm.options": ("-Xmx1g\n", 0o644),
        },
    )
    for plugin in PLUGINS:
        write_zip(repo / plugin.artifact.filename, {"plugin-descriptor.properties": (plugin.name, 0o644)})
    mvn = repo / "mvn"
    mvn.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do case "$arg" in\n'
        '  -Dartifact=*) coords="${arg#-Dartifact=}" ;;\n'
        '  -DoutputDirectory=*) out="${arg#-DoutputDirectory=}" ;;\n'
        "esac; done\n"
        f'echo "$coords" >> "{repo}/calls"\n'
        'name="$(echo "$coords" | cut -d: -f2)-$(echo "$coords" | cut -d: -f3).zip"\n'
        f'mkdir -p "$out" && cp "{repo}/$name" "$out/"\n'
    )
    mvn.chmod(0o755)
    return repo


def test_assembly_unpacks_the_distribution_and_installs_every_plugin_in_order(
    repo: Path, tmp_path: Path
) -> None:
    # Given an empty cache
    home = opensearch_home(tmp_path / "cache")
    messages: list[str] = []

    # When the node is assembled
    result = assemble(home, java=JAVA, mvn=str(repo / "mvn"), progress=messages.append)

    # Then the install is marked complete, its scripts are executable, and every plugin went in, in order
    assert result == home
    assert is_installed(home)
    assert os.access(home / "bin" / "opensearch", os.X_OK)
    installed = (home / "installed.txt").read_text().splitlines()
    assert [line.split(" ")[0].rsplit("/", 1)[-1] for line in installed] == [
        p.artifact.filename for p in PLUGINS
    ]
    assert all(line.endswith(f"java={JAVA.home}") for line in installed)
    # And only the install is left in the cache: no scratch folder, no zip copies
    assert [path.name for path in home.parent.iterdir()] == [home.name]
    assert messages[-1] == f"installed OpenSearch {OPENSEARCH_VERSION} in {home}"


def test_a_second_assembly_does_nothing(repo: Path, tmp_path: Path) -> None:
    # Given an assembled node
    home = opensearch_home(tmp_path / "cache")
    assemble(home, java=JAVA, mvn=str(repo / "mvn"), progress=lambda _: None)
    calls = (repo / "calls").read_text()

    # When it is assembled again, even with no mvn at all
    result = assemble(home, java=JAVA, mvn=None, progress=lambda _: None)

    # Then it returns the same install without fetching anything
    assert result == home
    assert (repo / "calls").read_text() == calls


def test_a_failed_plugin_install_leaves_nothing_that_looks_installed(repo: Path, tmp_path: Path) -> None:
    # Given a distribution whose plugin tool fails
    write_zip(
        repo / DISTRIBUTION.filename,
        {
            f"{TOP}/bin/opensearch": executable("#!/bin/sh\n"),
            f"{TOP}/bin/opensearch-plugin": executable(
                "#!/bin/sh\necho 'plugin is incompatible' >&2\nexit 1\n"
            ),
        },
    )
    home = opensearch_home(tmp_path / "cache")

    # When the node is assembled, Then the error names the plugin and quotes the tool
    with pytest.raises(
        SetupError, match=rf"(?s)installing plugin {PLUGINS[0].name} .*plugin is incompatible"
    ):
        assemble(home, java=JAVA, mvn=str(repo / "mvn"), progress=lambda _: None)

    # And no install or scratch folder is left behind
    assert list(home.parent.iterdir()) == []
    assert not (home / MARKER).exists()
