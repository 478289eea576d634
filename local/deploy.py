"""Deploy the synthesized osbatch stack into the local runtime.

The local run uses the very template `cdk deploy` would deploy: the same state machine definition, the
same wiring, the same function code asset. Only three things differ, all made here and printed:
- functions reach the local OpenSearch node instead of a domain (OPENSEARCH_ENDPOINT);
- k-NN mappings that ask for faiss use lucene, because the local node has no native k-NN libraries: the
  stack is synthesized from localized copies of the configs, so the code asset carries those;
- the dependency layer is not bundled: the emulator runs handlers on this machine's virtualenv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

from infra import pipelines as infra_pipelines
from local.aws import session
from local.aws.cfn_loader import DeployedStack, deploy_assembly
from local.opensearch.mapping import localize_mapping
from local.paths import REPO_ROOT, state_dir
from local.runtime import AWS_URL, Progress
from osbatch.config import Backend, PipelineConfig

STACK_NAME = "osbatch"
DEFAULT_PIPELINES = "pipelines/*.yaml"
LOCAL_MODEL_IMAGE = "osbatch/local-onnx-embedder:latest"  # the emulator runs the ONNX model, not an image


def load_pipelines(pattern: str = DEFAULT_PIPELINES) -> list[PipelineConfig]:
    """The configs app.py would synthesize, read the same way (relative to the repository)."""
    return infra_pipelines.load_pipelines(pattern, REPO_ROOT)


def synth(pattern: str, outdir: Path, progress: Progress = print) -> Path:
    """`cdk synth` without the CLI: run app.py with the cloud assembly directory and context set."""
    context = {"pipelines": pattern, "stack_name": STACK_NAME, "aws:cdk:bundling-stacks": []}
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context)}
    progress(f"synthesizing the stack from {pattern}")
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"cdk synth failed:\n{result.stderr.strip() or result.stdout.strip()}")
    return outdir


def localized(configs: list[PipelineConfig], progress: Progress) -> list[PipelineConfig]:
    out = []
    for config in configs:
        mapping, notes = localize_mapping(config.sink.mapping, index=config.sink.index)
        for note in notes:
            progress(f"note: pipeline {config.name}: {note}")
        sink = config.sink.model_copy(update={"mapping": mapping})
        out.append(config.model_copy(update={"sink": sink}))
    return out


def write_configs(configs: list[PipelineConfig], directory: Path) -> str:
    """The configs as files app.py can synthesize from; returns their (absolute) glob."""
    if directory.exists():
        shutil.rmtree(directory)  # a pipeline dropped since the last run must not be deployed
    directory.mkdir(parents=True)
    for config in configs:
        text = yaml.safe_dump(json.loads(config.to_json()), sort_keys=False)
        (directory / f"{config.name}.yaml").write_text(text, encoding="utf-8")
    return str(directory / "*.yaml")


def deploy_local(
    pattern: str = DEFAULT_PIPELINES, *, opensearch_url: str, progress: Progress = print
) -> DeployedStack:
    configs = load_pipelines(pattern)
    local_pattern = write_configs(localized(configs, progress), state_dir() / "pipelines")
    outdir = synth(local_pattern, state_dir() / "cdk.out", progress)
    overrides = {
        "OPENSEARCH_ENDPOINT": opensearch_url,
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
    }
    stack = deploy_assembly(
        outdir, STACK_NAME, endpoint_url=AWS_URL, environment_overrides=overrides, progress=progress
    )
    ensure_sagemaker_models(configs, stack, progress)
    return stack


def ensure_sagemaker_models(configs: list[PipelineConfig], stack: DeployedStack, progress: Progress) -> None:
    """On AWS the user creates the SageMaker model; locally it stands for the packaged MiniLM."""
    sagemaker = session().client("sagemaker", endpoint_url=AWS_URL)
    role = _output(stack, "SageMakerRoleArn")
    for config in configs:
        if config.inference.backend is not Backend.SAGEMAKER or config.inference.sagemaker is None:
            continue
        name = config.inference.sagemaker.ModelName
        try:
            sagemaker.describe_model(ModelName=name)
            continue
        except ClientError:
            pass
        sagemaker.create_model(
            ModelName=name,
            PrimaryContainer={"Image": LOCAL_MODEL_IMAGE},
            ExecutionRoleArn=role,
        )
        progress(f"created SageMaker model {name} (runs all-MiniLM-L6-v2 on onnxruntime locally)")


def _output(stack: DeployedStack, name: str) -> str:
    outputs: dict[str, Any] = stack.outputs
    if name not in outputs:
        raise KeyError(f"stack output {name} is missing; outputs are {sorted(outputs)}")
    return str(outputs[name])
