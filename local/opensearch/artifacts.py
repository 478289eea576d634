"""What the local node is assembled from, fetched with Maven's own client into its ~/.m2 cache."""

from __future__ import annotations

import codecs
import subprocess
from dataclasses import dataclass
from pathlib import Path

from local.opensearch.errors import MissingArtifactError, MissingMavenError, SetupError
from local.opensearch.transfer import MavenTransferReader, TransferDisplay

# The newest release for which the distribution and every plugin zip below are published.
# 3.7.0 has a distribution zip but no k-NN or ML Commons zip yet; check them all before moving this.
OPENSEARCH_VERSION = "3.6.0"
PLUGIN_VERSION = f"{OPENSEARCH_VERSION}.0"


@dataclass(frozen=True)
class Artifact:
    group: str
    artifact: str
    version: str
    packaging: str = "zip"
    classifier: str = ""

    @property
    def coordinates(self) -> str:
        base = f"{self.group}:{self.artifact}:{self.version}:{self.packaging}"
        return f"{base}:{self.classifier}" if self.classifier else base

    @property
    def filename(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.{self.packaging}"


@dataclass(frozen=True)
class Plugin:
    name: str  # as the node lists it in _cat/plugins; not always the artifactId
    artifact: Artifact


# The integ-test zip is the smallest distribution with no security plugin, so the node speaks plain HTTP.
DISTRIBUTION = Artifact("org.opensearch.distribution.integ-test-zip", "opensearch", OPENSEARCH_VERSION)

# In install order: a plugin comes after the plugins it extends (ML Commons extends job-scheduler,
# neural-search extends k-NN).
PLUGINS = tuple(
    Plugin(name, Artifact("org.opensearch.plugin", artifact_id, PLUGIN_VERSION))
    for name, artifact_id in (
        ("opensearch-job-scheduler", "opensearch-job-scheduler"),
        ("opensearch-knn", "opensearch-knn"),
        ("opensearch-ml", "opensearch-ml-plugin"),
        ("opensearch-neural-search", "neural-search"),
    )
)

_NOT_FOUND = ("Could not find artifact", "Unable to find artifact", "was not found in")


def download(
    artifact: Artifact, dest_dir: Path, mvn: str | None, show: TransferDisplay | None = None
) -> Path:
    """Copy one artifact into dest_dir; Maven downloads it into ~/.m2 first if it is not there yet.
    show: where the bytes of a download go as they arrive (transfer.py); without it, mvn runs quiet."""
    if mvn is None:
        raise MissingMavenError(
            "Maven (mvn) is not on PATH; the local OpenSearch node is downloaded with it. "
            "Install it (Debian: apt-get install maven) and run again."
        )
    # Batch mode (-B) has no colour codes in the output we quote in errors, and no transfer progress;
    # with a display, colours are turned off by name instead, and Maven's console listener reports bytes.
    quiet = ["-q", "-B"] if show is None else ["-Dstyle.color=never"]
    command = [
        mvn,
        *quiet,
        "-U",  # re-ask for artifacts whose absence Maven cached, so a transient miss does not stick
        "dependency:copy",
        f"-Dartifact={artifact.coordinates}",
        f"-DoutputDirectory={dest_dir}",
    ]
    returncode, output = _run(command, show)
    if returncode != 0:
        raise download_error(artifact, output)
    path = dest_dir / artifact.filename
    if not path.is_file():
        raise SetupError(f"mvn reported success for {artifact.coordinates} but {path} does not exist")
    return path


def _run(command: list[str], show: TransferDisplay | None) -> tuple[int, str]:
    """mvn's exit code and output (stdout and stderr); with a display, its transfers shown as they run."""
    if show is None:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        return result.returncode, result.stdout + result.stderr
    reader, output = MavenTransferReader(show), []
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode  # a character may span reads
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        assert process.stdout is not None
        # read1: whatever has arrived, so "Progress" rewritten with carriage returns is seen as it comes
        while piece := process.stdout.read1(65536):  # type: ignore[attr-defined]
            text = decode(piece)
            output.append(text)
            reader.feed(text)
        returncode = process.wait()
    reader.close()
    return returncode, "".join(output)


def download_error(artifact: Artifact, mvn_output: str) -> SetupError:
    if any(marker in mvn_output for marker in _NOT_FOUND):
        return MissingArtifactError(
            f"Maven Central has no {artifact.coordinates}. "
            f"The local node pins OpenSearch {OPENSEARCH_VERSION}; choose a version for which the "
            "distribution and every plugin zip are published, and set OPENSEARCH_VERSION in "
            "local/opensearch/artifacts.py."
        )
    errors = [line.removeprefix("[ERROR]").strip() for line in mvn_output.splitlines() if "[ERROR]" in line]
    reason = next((line for line in errors if line), mvn_output.strip()[-500:] or "no output")
    return SetupError(
        f"mvn could not fetch {artifact.coordinates}: {reason}\n"
        "Check that Maven can reach Maven Central (proxies go in ~/.m2/settings.xml), then run again."
    )
