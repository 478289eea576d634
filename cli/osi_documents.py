"""Reading what `osbatch import-osi` converts: an OpenSearch Ingestion pipeline and, optionally, the ML
Commons connector its model calls.

The pipeline is OSI's YAML (Amazon OpenSearch Service Developer Guide, "Using an OpenSearch Ingestion pipeline
with machine learning offline batch inference",
https://docs.aws.amazon.com/opensearch-service/latest/developerguide/configure-clients-ml-commons-batch.html):
`version`, `extension` and one or more named sub-pipelines of `source`, `processor`, `sink` and `routes`. A
file holding only a `processor:` list (as that page's and Data Prepper's "ML inference processor" examples
do) is read as one sub-pipeline without source or sink.

The connector is the body of `POST /_plugins/_ml/connectors/_create` or the answer of `GET
/_plugins/_ml/connectors/<id>`, as JSON or as typed in OpenSearch Dashboards' Dev Tools: a request line first,
and `\"\"\"...\"\"\"` strings (the console's triple-quoted strings, which JSON does not have).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from osbatch.config import ConfigError

# Top-level keys of an OSI pipeline file that are not sub-pipelines (Data Prepper's pipeline YAML).
FILE_KEYS = ("version", "extension", "pipeline_configurations")
SUB_PIPELINE_KEYS = (
    "source",
    "processor",
    "processors",
    "sink",
    "routes",
    "route",
    "buffer",
    "workers",
    "delay",
)
ML_INFERENCE = "ml_inference"
# A Dev Tools request line: `POST /_plugins/_ml/connectors/_create`.
REQUEST_LINE = re.compile(r"^\s*(GET|POST|PUT)\s+/\S*\s*\n")
TRIPLE_QUOTED = re.compile(r'"""(.*?)"""', re.DOTALL)


class OsiImportError(ConfigError):
    """The file cannot be converted: not YAML, no ml_inference processor, a required field missing. Exit 2."""


@dataclass(frozen=True)
class OsiPipeline:
    """The sub-pipeline that holds the ml_inference processor, and the rest of the file around it."""

    name: str | None  # None: a file of a processor list only
    body: dict[str, Any]
    others: dict[str, Any]  # the file's other top-level keys (version, extension, other sub-pipelines)


def _has_ml_inference(body: Any) -> bool:
    processors = body.get("processor") if isinstance(body, dict) else None
    return isinstance(processors, list) and any(
        isinstance(step, dict) and ML_INFERENCE in step for step in processors
    )


def read_osi_pipeline(path: Path, choose: str | None = None) -> OsiPipeline:
    """The sub-pipeline of `path` that uses ml_inference (`choose` names it when several do)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OsiImportError(f"{path}: no such file") from None
    except yaml.YAMLError as error:
        raise OsiImportError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise OsiImportError(f"{path}: not an OpenSearch Ingestion pipeline (expected a YAML mapping)")
    if "processor" in document and not any(
        isinstance(v, dict) and "processor" in v for v in document.values()
    ):
        if not _has_ml_inference(document):
            raise OsiImportError(f"{path}: no ml_inference processor in its processor list")
        return OsiPipeline(name=None, body=document, others={})
    candidates = [key for key, body in document.items() if key not in FILE_KEYS and _has_ml_inference(body)]
    if not candidates:
        raise OsiImportError(
            f"{path}: no sub-pipeline uses the ml_inference processor (osbatch imports the pipeline that "
            "starts the batch inference jobs)"
        )
    if choose is not None:
        if choose not in candidates:
            raise OsiImportError(
                f"{path}: no sub-pipeline '{choose}' with ml_inference; found {', '.join(candidates)}"
            )
        candidates = [choose]
    if len(candidates) > 1:
        raise OsiImportError(
            f"{path}: sub-pipelines {', '.join(candidates)} all use ml_inference; "
            "name one with --osi-pipeline"
        )
    name = candidates[0]
    others = {key: value for key, value in document.items() if key != name}
    return OsiPipeline(name=str(name), body=document[name], others=others)


def read_connector(path: Path) -> dict[str, Any]:
    """An ML Commons connector, from JSON or a Dev Tools `_create` request."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OsiImportError(f"{path}: no such connector file") from None
    text = REQUEST_LINE.sub("", text, count=1)
    text = TRIPLE_QUOTED.sub(lambda match: json.dumps(match.group(1)), text)
    try:
        connector = json.loads(text)
    except json.JSONDecodeError as error:
        raise OsiImportError(f"{path}: not a connector (JSON): {error}") from None
    if not isinstance(connector, dict) or not isinstance(connector.get("parameters"), dict):
        raise OsiImportError(f"{path}: not an ML Commons connector (it has no 'parameters' object)")
    return connector
