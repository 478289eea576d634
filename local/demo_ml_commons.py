"""`make demo BACKEND=ml-commons`: what the demo needs for the ml-commons backend, for the BACKEND switch.

The demo's flow is the same for every backend (deploy, upload the sample, follow, summarize, search); this one
differs only in that ML Commons must hold the batch model before the first upload, which `osbatch setup`
registers (local/search_setup.py: the batch connector calls the AWS emulator's transform jobs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local.search_setup import provision_local
from osbatch.config import Backend, PipelineConfig

# The example config the switch deploys and uploads the sample to (its own prefix and index).
DEMO_PIPELINES = "pipelines/examples/ml-commons-sagemaker.yaml"
DEMO_PIPELINE = "python-docs-mlc"


def prepare_ml_commons_demo(
    client: Any, config: PipelineConfig, progress: Callable[[str], None] = print
) -> None:
    """Register (or check) the pipeline's batch model on the local node; call it before uploading."""
    if config.inference.backend is not Backend.ML_COMMONS:
        raise ValueError(f"pipeline {config.name} does not use the ml-commons backend")
    progress(f"registering the batch model of {config.name} in ML Commons (osbatch setup)")
    for change in provision_local(client, config, progress).changes:
        progress(f"  {change.describe()}")
