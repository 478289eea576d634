"""The one dependency layer, built by pip on this machine: synth needs neither Docker nor a build image.

pip installs exactly requirements/lambda.lock (`make lock`): every distribution pinned and checked against
its hash (`--require-hashes`), none resolved at build time (`--no-deps`, since the lock leaves out what
nothing imports), so the same lock always builds the same layer. The asset hash is taken over the lock
and the install options, so a changed pin, hash or platform rebuilds it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

PYTHON_VERSION = "3.12"  # must match the functions' runtime: the wheels are cp312 only
PLATFORM = "manylinux2014_aarch64"  # must match Architecture.ARM_64


INSTALL_OPTIONS = (
    "--platform", PLATFORM,
    "--implementation", "cp",
    "--python-version", PYTHON_VERSION,
    "--only-binary=:all:",  # a source build would compile for the host, not for Lambda
    "--no-compile",  # the host's .pyc files would be for the host's Python
    "--require-hashes",  # every file must match the lock's hash
    "--no-deps",  # the lock is the whole set: nothing is resolved, nothing left out comes back
    "--disable-pip-version-check",
    "--quiet",
)  # fmt: skip


def layer_hash(lock: Path) -> str:
    """What decides the layer's content: the lock file and how it is installed."""
    digest = hashlib.sha256(lock.read_bytes())
    digest.update("\0".join(INSTALL_OPTIONS).encode())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class PipInstall:
    """Installs the locked wheels for Lambda's platform, whatever the host is."""

    def __init__(self, lock: Path) -> None:
        self._lock = lock

    def try_bundle(self, output_dir: str, _options: Any = None) -> bool:  # jsii passes options positionally
        target = str(Path(output_dir) / "python")
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            *INSTALL_OPTIONS,
            "--target",
            target,
            "-r",
            str(self._lock),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            # Returning False would fall back to Docker, which this project never uses: fail with pip's words.
            raise RuntimeError(f"building the dependency layer failed:\n{result.stderr.strip()}")
        return True


def dependencies_layer(scope: Construct, construct_id: str, lock: Path) -> lambda_.LayerVersion:
    code = lambda_.Code.from_asset(
        str(lock.parent),
        exclude=["*", f"!{lock.name}"],
        # The lock and the install options, not the directory: a re-synth reuses the bundle in cdk.out.
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=layer_hash(lock),
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises. CDK requires an image to be named.
            image=DockerImage.from_registry("osbatch/local-bundling-only"),
            # jsii calls try_bundle(output_dir, options) positionally, unlike the generated protocol.
            local=cast(ILocalBundling, PipInstall(lock)),
        ),
    )
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=code,
        compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
        compatible_architectures=[lambda_.Architecture.ARM_64],
        description=f"osbatch runtime dependencies ({lock.name})",
    )
