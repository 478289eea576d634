"""Deploy the osbatch stack into the local runtime the way `cdk deploy` deploys it to AWS.

`cdk synth` (app.py) with local context, then the assets and the template go to the emulator's
CloudFormation (local.aws.cdk_deploy). What differs locally is context, visible in app.py:
- `local_opensearch_endpoint`: functions reach the local node instead of a domain (OPENSEARCH_ENDPOINT);
- `local_knn_engine=lucene`: k-NN mappings that ask for faiss use lucene (the node has no native engines);
- `aws:cdk:bundling-stacks=[]`: the dependency layer is not bundled; sandboxes import it from this
  machine's virtualenv (the layer's wheels are for arm64 Lambda).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from secrets import token_hex

from botocore.exceptions import ClientError

from infra import pipelines as infra_pipelines
from local.aws import session
from local.aws.cdk_deploy import DeployedStack, deploy_assembly
from local.opensearch.mapping import LOCAL_ENGINE
from local.paths import REPO_ROOT, state_dir
from local.runtime import AWS_URL, OPENAI_URL, Progress
from osbatch.config import Backend, PipelineConfig, SageMakerJobConfig

STACK_NAME = "osbatch"
DEFAULT_PIPELINES = "pipelines/*.yaml"
LOCAL_MODEL_IMAGE = "osbatch/local-onnx-embedder:latest"  # the emulator runs the ONNX model, not an image


def load_pipelines(pattern: str = DEFAULT_PIPELINES) -> list[PipelineConfig]:
    """The configs app.py would synthesize, read the same way (relative to the repository)."""
    return infra_pipelines.load_pipelines(pattern, REPO_ROOT)


def local_context(pattern: str, opensearch_url: str) -> dict[str, object]:
    return {
        "pipelines": pattern,
        "stack_name": STACK_NAME,
        "local_opensearch_endpoint": opensearch_url,
        "local_knn_engine": LOCAL_ENGINE,
        "local_openai_base": OPENAI_URL,
        "aws:cdk:bundling-stacks": [],
    }


def synth(context: dict[str, object], outdir: Path, progress: Progress = print) -> Path:
    """`cdk synth` without the CLI: run app.py with the cloud assembly directory and context set."""
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(context)}
    progress(f"synthesizing the stack from {context['pipelines']}")
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"cdk synth failed:\n{result.stderr.strip() or result.stdout.strip()}")
    for line in result.stderr.splitlines():
        if line.startswith("note: "):
            progress(line)
    return outdir


def deploy_local(
    pattern: str = DEFAULT_PIPELINES, *, opensearch_url: str, progress: Progress = print
) -> DeployedStack:
    configs = load_pipelines(pattern)
    outdir = synth(local_context(pattern, opensearch_url), state_dir() / "cdk.out", progress)
    stack = deploy_assembly(outdir, STACK_NAME, endpoint_url=AWS_URL, progress=progress)
    progress(f"stack {stack.stack_name} is {stack.status} with {len(stack.resources)} resources")
    ensure_sagemaker_models(configs, stack, progress)
    ensure_openai_secrets(configs, progress)
    return stack


def ensure_openai_secrets(configs: list[PipelineConfig], progress: Progress) -> None:
    """On AWS the user stores the API key; locally a random key, which the OpenAI emulator also reads."""
    secrets = session().client("secretsmanager", endpoint_url=AWS_URL)
    for config in configs:
        settings = config.inference.openai
        if settings is None:
            continue
        try:
            secrets.describe_secret(SecretId=settings.api_key_secret)
            continue
        except ClientError:
            pass
        secrets.create_secret(Name=settings.api_key_secret, SecretString=f"sk-local-{token_hex(24)}")
        progress(f"created secret {settings.api_key_secret} holding a local OpenAI API key")


def ensure_sagemaker_models(configs: list[PipelineConfig], stack: DeployedStack, progress: Progress) -> None:
    """On AWS the user creates the SageMaker model; locally it stands for the packaged MiniLM."""
    sagemaker = session().client("sagemaker", endpoint_url=AWS_URL)
    role = stack.outputs["SageMakerRoleArn"]
    for config in configs:
        job = transform_settings(config)
        if job is None:
            continue
        name = job.ModelName
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


def transform_settings(config: PipelineConfig) -> SageMakerJobConfig | None:
    """The transform job settings of a pipeline that runs SageMaker transform jobs, directly or through
    ML Commons' batch connector."""
    if config.inference.backend is Backend.SAGEMAKER:
        return config.inference.sagemaker
    if config.inference.backend is Backend.ML_COMMONS and config.inference.ml_commons is not None:
        return config.inference.ml_commons.sagemaker
    return None


def with_local_openai(pipelines: list[PipelineConfig], api_base: str) -> list[PipelineConfig]:
    """The openai pipelines pointed at the local OpenAI emulator (a local-only change, printed)."""
    changed = []
    for config in pipelines:
        settings = config.inference.openai
        if settings is not None and settings.api_base != api_base:
            print(
                f"note: pipeline {config.name}: OpenAI api_base {api_base} (local emulator)", file=sys.stderr
            )
            inference = config.inference.model_copy(
                update={"openai": settings.model_copy(update={"api_base": api_base})}
            )
            config = config.model_copy(update={"inference": inference})
        changed.append(config)
    return changed
