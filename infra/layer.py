"""The one dependency layer, built by pip on this machine: synth needs neither Docker nor a build image."""

from __future__ import annotations

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


@jsii.implements(ILocalBundling)
class PipInstall:
    """Installs requirements as binary wheels for Lambda's platform, whatever the host is."""

    def __init__(self, requirements: Path) -> None:
        self._requirements = requirements

    def try_bundle(self, output_dir: str, _options: Any = None) -> bool:  # jsii passes options positionally
        command = [
            sys.executable, "-m", "pip", "install",
            "--platform", PLATFORM,
            "--implementation", "cp",
            "--python-version", PYTHON_VERSION,
            "--only-binary=:all:",  # a source build would compile for the host, not for Lambda
            "--no-compile",  # the host's .pyc files would be for the host's Python
            "--disable-pip-version-check",
            "--quiet",
            "--target", str(Path(output_dir) / "python"),
            "-r", str(self._requirements),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            # Returning False would fall back to Docker, which this project never uses: fail with pip's words.
            raise RuntimeError(f"building the dependency layer failed:\n{result.stderr.strip()}")
        return True


def dependencies_layer(scope: Construct, construct_id: str, requirements: Path) -> lambda_.LayerVersion:
    code = lambda_.Code.from_asset(
        str(requirements.parent),
        # Only the requirements file goes into the hash, so a re-synth reuses the bundle in cdk.out.
        exclude=["*", f"!{requirements.name}"],
        asset_hash_type=AssetHashType.SOURCE,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises. CDK requires an image to be named.
            image=DockerImage.from_registry("osbatch/local-bundling-only"),
            # jsii calls try_bundle(output_dir, options) positionally, unlike the generated protocol.
            local=cast(ILocalBundling, PipInstall(requirements)),
        ),
    )
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=code,
        compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
        compatible_architectures=[lambda_.Architecture.ARM_64],
        description=f"osbatch runtime dependencies ({requirements.name})",
    )
