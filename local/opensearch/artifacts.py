"""What the local node is assembled from, fetched with Maven's own client into its ~/.m2 cache."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from local.opensearch.errors import MissingArtifactError, MissingMavenError, SetupError

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


def download(artifact: Artifact, dest_dir: Path, mvn: str | None) -> Path:
    """Copy one artifact into dest_dir; Maven downloads it into ~/.m2 first if it is not there yet."""
    if mvn is None:
        raise MissingMavenError(
            "Maven (mvn) is not on PATH; the local OpenSearch node is downloaded with it. "
            "Install it (Debian: apt-get install maven) and run again."
        )
    command = [
        mvn,
        "-q",
        "-B",  # no colour codes in the output we quote in errors
        "-U",  # re-ask for artifacts whose absence Maven cached, so a transient miss does not stick
        "dependency:copy",
        f"-Dartifact={artifact.coordinates}",
        f"-DoutputDirectory={dest_dir}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise download_error(artifact, result.stdout + result.stderr)
    path = dest_dir / artifact.filename
    if not path.is_file():
        raise SetupError(f"mvn reported success for {artifact.coordinates} but {path} does not exist")
    return path


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
