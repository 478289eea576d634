"""Which pipeline `make demo BACKEND=...` runs the sample through, one entry per inference backend.

Every entry runs the same demo (cli/demo.py): the same sample, summary and searches, on its own prefix
and index. Adding a backend to the demo is one entry here and its pipeline config in pipelines/examples/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.demo_ml_commons import DEMO_PIPELINE as ML_COMMONS_PIPELINE
from local.demo_ml_commons import DEMO_PIPELINES as ML_COMMONS_PIPELINES
from local.demo_ml_commons import prepare_ml_commons_demo

# What a backend needs on the node before the sample is uploaded: (OpenSearch client, config, progress).
BeforeUpload = Callable[[Any, Any, Callable[[str], None]], None]

DEFAULT_BACKEND = "sagemaker"


@dataclass(frozen=True)
class DemoBackend:
    pipelines: str  # the configs the demo deploys (a glob relative to the repository)
    pipeline: str  # the one the sample is uploaded to; its search side is what the demo searches through
    before_upload: BeforeUpload | None = None

    @property
    def rerank_pipeline(self) -> str:
        return f"{self.pipeline}-rerank"


DEMO_BACKENDS: dict[str, DemoBackend] = {
    "sagemaker": DemoBackend("pipelines/*.yaml", "python-docs"),
    "bedrock": DemoBackend("pipelines/examples/python-docs-bedrock.yaml", "python-docs-bedrock"),
    "openai": DemoBackend("pipelines/examples/python-docs-openai.yaml", "python-docs-openai"),
    "ml-commons": DemoBackend(ML_COMMONS_PIPELINES, ML_COMMONS_PIPELINE, prepare_ml_commons_demo),
}


class UnknownBackend(ValueError):
    pass


def demo_backend(name: str) -> DemoBackend:
    try:
        return DEMO_BACKENDS[name]
    except KeyError:
        choices = ", ".join(sorted(DEMO_BACKENDS))
        raise UnknownBackend(f"unknown demo backend '{name}': BACKEND must be one of {choices}") from None
