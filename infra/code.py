"""The functions' code asset: `lambdas/` plus the stack's pipeline configs, staged at synth.

The configs ship as a file in the asset rather than in an environment variable, so a stack can deploy
any number of pipelines (Lambda caps a function's environment at 4 KB), and the asset's hash, taken over
its files, changes whenever a config does, so a redeploy updates the code.

The asset is staged by copying rather than by CDK bundling: a synth that skips bundling (context
`aws:cdk:bundling-stacks`, as the infra tests and the local runtime set it so the dependency layer is
not built) would ship a bundled asset as its bare source directory, without the configs.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Names, Stage
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from osbatch.infra_facts import DEPLOYED_PIPELINES_FILE, PipelineConfig, pipelines_to_json

SOURCE = Path(__file__).resolve().parent.parent / "lambdas"
PACKAGE = "osbatch"
EXCLUDE = ("__pycache__", "*.pyc", "tests", ".pytest_cache", ".mypy_cache", "*.egg-info")
STAGING_DIR = "osbatch-code"  # under the cloud assembly directory, which CDK owns for the synth


def stage_code(target: Path, pipelines: Sequence[PipelineConfig], source: Path = SOURCE) -> Path:
    """A fresh copy of source at target, with the configs in the package: what each function runs."""
    if target.exists():
        shutil.rmtree(target)  # a module deleted from source must not linger from an earlier synth
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*EXCLUDE))
    configs = target / PACKAGE / DEPLOYED_PIPELINES_FILE
    configs.write_text(pipelines_to_json(list(pipelines)), encoding="utf-8")
    return target


def code_asset(scope: Construct, pipelines: Sequence[PipelineConfig]) -> lambda_.Code:
    stage = Stage.of(scope)
    assert stage is not None, "a construct in an app always has a stage"
    # One directory per construct, so stacks with different pipelines in one app never share one.
    staging = Path(stage.outdir) / STAGING_DIR / Names.unique_id(scope)
    return lambda_.Code.from_asset(str(stage_code(staging, pipelines)))
