"""Assemble the node once: the distribution zip plus plugin zips, unpacked into the cache outside the repo.

Assembly happens in a scratch folder next to the target and is renamed into place only when complete, so an
interrupted install leaves nothing that looks installed. The marker file is what "installed" means.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from local.opensearch.artifacts import DISTRIBUTION, OPENSEARCH_VERSION, PLUGINS, Artifact, Plugin, download
from local.opensearch.errors import SetupError
from local.opensearch.java import JavaRuntime
from local.opensearch.transfer import TransferDisplay, transfer_display

MARKER = ".osbatch-installed.json"


def opensearch_home(cache_root: Path) -> Path:
    return cache_root / "opensearch" / f"opensearch-{OPENSEARCH_VERSION}"


def is_installed(home: Path) -> bool:
    return (home / MARKER).is_file()


def assemble(home: Path, *, java: JavaRuntime, mvn: str | None, progress: Callable[[str], None]) -> Path:
    if is_installed(home):
        return home
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home.parent, prefix=".assembling-") as scratch:
        work = Path(scratch)
        zips = work / "zips"  # copies out of ~/.m2, deleted with the scratch folder
        progress(f"fetching OpenSearch and {len(PLUGINS)} plugins with mvn (~570 MB if not in ~/.m2)")
        show = transfer_display(progress)  # the bytes of whatever is not in ~/.m2 yet
        try:
            distribution = _fetch(DISTRIBUTION, zips, mvn, progress, show)
            plugin_zips = [(plugin, _fetch(plugin.artifact, zips, mvn, progress, show)) for plugin in PLUGINS]
        finally:
            show.close()
        progress("unpacking the distribution")
        staged = _unzip(distribution, work)
        for plugin, plugin_zip in plugin_zips:
            progress(f"installing plugin {plugin.name}")
            _install_plugin(staged, plugin, plugin_zip, java)
        plugins = {plugin.name: plugin.artifact.coordinates for plugin in PLUGINS}
        manifest = {"opensearch": OPENSEARCH_VERSION, "plugins": plugins}
        (staged / MARKER).write_text(json.dumps(manifest, indent=2) + "\n")
        if home.exists():  # a stale unmarked copy, e.g. one a person unpacked by hand
            shutil.rmtree(home)
        staged.rename(home)
    progress(f"installed OpenSearch {OPENSEARCH_VERSION} in {home}")
    return home


def _fetch(
    artifact: Artifact, dest: Path, mvn: str | None, progress: Callable[[str], None], show: TransferDisplay
) -> Path:
    progress(f"  {artifact.coordinates}")
    return download(artifact, dest, mvn, show)


def _unzip(archive_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            target = archive.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode & 0o111:  # zipfile drops permissions; bin/ scripts and the JDK launcher need +x
                os.chmod(target, mode)
    top = dest / f"opensearch-{OPENSEARCH_VERSION}"
    if not (top / "bin" / "opensearch").is_file():
        raise SetupError(f"{archive_path} does not unpack to {top.name}/bin/opensearch; is it damaged?")
    return top


def _install_plugin(home: Path, plugin: Plugin, plugin_zip: Path, java: JavaRuntime) -> None:
    env = {key: value for key, value in os.environ.items() if key != "OPENSEARCH_PATH_CONF"}
    env["OPENSEARCH_JAVA_HOME"] = str(java.home)
    result = subprocess.run(
        [str(home / "bin" / "opensearch-plugin"), "install", "--batch", plugin_zip.as_uri()],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-2000:]
        raise SetupError(f"installing plugin {plugin.name} ({plugin.artifact.coordinates}) failed:\n{output}")
