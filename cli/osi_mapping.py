"""An OpenSearch Ingestion pipeline that uses the `ml_inference` processor, as an osbatch pipeline config.

The formats: AWS's page "Using an OpenSearch Ingestion pipeline with machine learning offline batch
inference" (https://docs.aws.amazon.com/opensearch-service/latest/developerguide/configure-clients-ml-commons-batch.html)
and Data Prepper's "ML inference processor" page
(https://docs.opensearch.org/latest/data-prepper/pipelines/configuration/processors/ml-inference/), whose
table of fields says which are required. Pure: the caller reads the files and validates the result with
osbatch's config model (cli/import_osi.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cli.osi_backends import CONNECTOR, Inference, bedrock_inference, sagemaker_inference
from cli.osi_documents import ML_INFERENCE, OsiImportError, OsiPipeline
from cli.osi_notes import Notes, join
from cli.osi_source_sink import map_sink, map_source, pointer_to_jsonpath

# The fields Data Prepper's ml_inference table marks required (action_type has a default).
REQUIRED = ("host", "model_id", "output_path", "aws.region")
SERVICES = ("sagemaker", "bedrock")
ML_REASONS = {
    "output_path": "osbatch gives each job its own output prefix in the stack's output bucket",
    "aws": "osbatch calls the services with its stack's roles, in its stack's region",
    "dlq": "osbatch dead-letters each record it cannot index, with its stage and reason, in the stack's "
    "dead-letter bucket (osbatch replay re-ingests them)",
    "ml_when": "osbatch's trigger is the stack's EventBridge rule on source.prefix and source.suffix of its "
    "input bucket",
    "tags_on_failure": "osbatch records each failed record's stage and reason in the dead-letter store",
    "input_key": "osbatch names each job's output after the job",
}
FILE_REASONS = {
    "version": "the OSI configuration format's version; osbatch configs have none",
    "extension": "OSI's own settings (the console's builder metadata, extensions)",
}
OTHER_SUB_PIPELINE = "a sub-pipeline without ml_inference; osbatch does its steps itself"
ROUTES_REASON = (
    "osbatch indexes every record of a job (no conditional routes); a record a field_map path is missing "
    "from is dead-lettered with the reason"
)
# Processors whose from_key/to_key entries become field_map entries (Data Prepper's copy_values, rename_keys).
FIELD_PROCESSORS = ("copy_values", "rename_keys")
NAME = re.compile(r"[^a-z0-9-]+")
BUCKET_CONDITION = re.compile(r"/bucket\s*==\s*[\"']([^\"']+)[\"']")


@dataclass(frozen=True)
class Conversion:
    config: dict[str, Any]
    notes: Notes
    osi_pipeline: str | None


def osbatch_name(text: str) -> str:
    """A pipeline name osbatch accepts (`^[a-z][a-z0-9-]{0,30}$`) made from an OSI name."""
    name = NAME.sub("-", text.lower()).strip("-")
    if not name[:1].isalpha():
        name = f"osi-{name}"
    if len(name) > 31:
        # Cut at a word, not inside one: "aws-ml-inference-processor-bedrock" -> "aws-ml-inference-processor".
        name = name[:32].rsplit("-", 1)[0] if "-" in name[:32] else name[:31]
    return name.rstrip("-")


def _required(ml: dict[str, Any], where: str) -> None:
    for dotted in REQUIRED:
        value: Any = ml
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value in (None, ""):
            raise OsiImportError(
                f"{where}.{dotted}: missing; Data Prepper's ml_inference processor requires "
                f"{', '.join(REQUIRED)}"
            )
    action = ml.get("action_type", "batch_predict")
    if action != "batch_predict":
        raise OsiImportError(
            f"{where}.action_type: '{action}'; osbatch runs offline batch inference (batch_predict) only"
        )
    if ml.get("service_name", "sagemaker") not in SERVICES:
        raise OsiImportError(
            f"{where}.service_name: '{ml.get('service_name')}'; the ml_inference processor's services are "
            f"{' and '.join(SERVICES)}"
        )


def convert(
    osi: OsiPipeline,
    *,
    fallback_name: str,
    connector: dict[str, Any] | None = None,
    model: str | None = None,
    name: str | None = None,
) -> Conversion:
    notes = Notes()
    root = osi.name or ""
    for key in osi.others:
        notes.skip(key, FILE_REASONS.get(key, OTHER_SUB_PIPELINE))
    pipeline_name = _name(osi, fallback_name, name, notes)
    processors = osi.body.get("processor") or []
    index = next(i for i, step in enumerate(processors) if isinstance(step, dict) and ML_INFERENCE in step)
    where = join(join(root, "processor"), index) + f".{ML_INFERENCE}"
    ml = processors[index][ML_INFERENCE] or {}
    _required(ml, where)
    inference = _inference(ml, where, pipeline_name, connector, model, notes)
    field_map = _field_map(processors, join(root, "processor"), index, notes)
    source = map_source(osi.body.get("source"), join(root, "source"), notes)
    out = map_sink(osi.body.get("sink"), join(root, "sink"), notes)
    for key in ("routes", "route"):
        if key in osi.body:
            notes.skip(join(root, key), ROUTES_REASON)
    endpoint = _endpoint(out.endpoint, ml["host"], where, notes)
    config = _assemble(pipeline_name, source, out.sink, endpoint, field_map, inference, out.id_path, notes)
    notes.finish(osi.body, root)
    notes.sort()
    return Conversion(config=config, notes=notes, osi_pipeline=osi.name)


def _name(osi: OsiPipeline, fallback: str, name: str | None, notes: Notes) -> str:
    pipeline_name = name or osbatch_name(osi.name or fallback)
    if name is None and osi.name is not None:
        notes.map(osi.name, "name", "" if pipeline_name == osi.name else f"as '{pipeline_name}'")
    else:
        notes.default(
            "name", pipeline_name, "--name" if name else "the file's name (the OSI file names none)"
        )
    return pipeline_name


def _inference(
    ml: dict[str, Any],
    where: str,
    name: str,
    connector: dict[str, Any] | None,
    model: str | None,
    notes: Notes,
) -> Inference:
    """The backend and its settings, and the processor's other fields mapped or named."""
    service = ml.get("service_name", "sagemaker")
    if connector is not None and "service_name" in connector["parameters"]:
        notes.map(f"{CONNECTOR}.parameters.service_name", "inference.backend")
    if service == "sagemaker":
        inference = sagemaker_inference(name, where, str(ml["model_id"]), connector, model, notes)
    else:
        inference = bedrock_inference(where, str(ml["model_id"]), connector, model, notes)
    if "service_name" in ml:
        notes.map(f"{where}.service_name", "inference.backend", f"{service}: {inference.settings['backend']}")
    if "action_type" in ml:
        notes.map(f"{where}.action_type", "inference", "osbatch runs batch jobs")
    if "aws_sigv4" in ml:
        notes.map(f"{where}.aws_sigv4", "sink.opensearch", "osbatch signs every request with SigV4")
    if "retry_time_window" in ml:
        inference.settings["retry_time_window"] = ml["retry_time_window"]
        notes.map(f"{where}.retry_time_window", "inference.retry_time_window")
    for key, reason in ML_REASONS.items():
        if key in ml:
            notes.skip(f"{where}.{key}", reason + _bucket_named(ml) if key == "ml_when" else reason)
    return inference


def _endpoint(sink_host: str | None, ml_host: str, where: str, notes: Notes) -> str:
    """The index's domain: the sink's, else the one the processor calls ML Commons on."""
    if sink_host is None:
        notes.map(f"{where}.host", "sink.opensearch.endpoint", "the ML Commons domain, as no sink names one")
        return ml_host
    if sink_host != ml_host:
        notes.skip(f"{where}.host", f"osbatch's ML Commons calls go to the index's domain, {sink_host}")
    else:
        notes.map(f"{where}.host", "sink.opensearch.endpoint", "the same domain as the sink's")
    return sink_host


def _bucket_named(ml: dict[str, Any]) -> str:
    """The bucket an `ml_when: /bucket == "x"` condition selects, said in its reason."""
    match = BUCKET_CONDITION.search(str(ml.get("ml_when", "")))
    if match is None:
        return ""
    return (
        f" (the condition selects bucket '{match.group(1)}': upload its objects to the input bucket instead)"
    )


def _field_map(processors: list[Any], where: str, ml_index: int, notes: Notes) -> dict[str, str]:
    field_map: dict[str, str] = {}
    for index, step in enumerate(processors):
        if index == ml_index:
            continue
        path = join(where, index)
        kind = next(iter(step), None) if isinstance(step, dict) else None
        body = step.get(kind) if kind else None
        if kind in FIELD_PROCESSORS and isinstance(body, dict):
            _entries(body.get("entries") or [], f"{path}.{kind}.entries", field_map, notes)
        elif kind == "delete_entries":
            notes.map(
                f"{path}.delete_entries", "sink.field_map", "osbatch indexes only the fields field_map names"
            )
        else:
            notes.skip(
                path, f"processor {kind}: osbatch maps output lines to documents with sink.field_map only"
            )
    return field_map


def _entries(entries: list[Any], path: str, field_map: dict[str, str], notes: Notes) -> None:
    for index, entry in enumerate(entries):
        where = join(path, index)
        if isinstance(entry, dict) and "from_key" in entry and "to_key" in entry:
            field = str(entry["to_key"]).strip("/").replace("/", ".")
            field_map[field] = pointer_to_jsonpath(str(entry["from_key"]))
            notes.map(where, f"sink.field_map.{field}")
        else:
            notes.skip(
                where,
                "not a from_key/to_key entry (the AWS sample indents its delete_entries processor into "
                "copy_values' entries, where it deletes nothing)",
            )


def _assemble(
    name: str,
    source: dict[str, Any],
    sink: dict[str, Any],
    endpoint: str,
    field_map: dict[str, str],
    backend: Inference,
    id_path: str | None,
    notes: Notes,
) -> dict[str, Any]:
    if "prefix" not in source:
        source["prefix"] = f"input/{name}/"
        notes.default(
            "source.prefix", source["prefix"], "the OSI pipeline scans no prefix osbatch can trigger on"
        )
    notes.default(
        "source.suffix",
        ".jsonl",
        "OSI reads every object it scans; osbatch starts jobs only for objects ending in source.suffix",
    )
    if id_path is not None:
        source["id_path"] = id_path
    else:
        notes.default(
            "source.id_path",
            "$._id",
            "the sink sets no document_id; osbatch indexes by the record's "
            "id so a re-run overwrites its documents instead of adding copies",
        )
    text_path = backend.text_path or "$.text"
    source["text_path"] = text_path
    if backend.text_path is None:
        notes.default(
            "source.text_path",
            text_path,
            "what the model reads; the AWS page's sample records hold their text in `text`",
        )
    else:
        notes.map(f"{CONNECTOR}.parameters.DataProcessing.InputFilter", "source.text_path")
    if not field_map:
        field_map = {"text": text_path, "embedding": backend.result_path}
        notes.default(
            "sink.field_map",
            field_map,
            "no copy_values or rename_keys says which index fields take the text and the model's output",
        )
    if "index" not in sink:
        sink["index"] = name
        notes.default("sink.index", name, "the OSI pipeline has no opensearch sink")
    notes.default(
        "sink.mapping",
        {},
        "OSI writes into an existing index; osbatch creates a missing one with "
        "sink.mapping, which should declare the vector field a knn_vector of the model's dimension",
    )
    return {
        "name": name,
        "description": "imported from an OpenSearch Ingestion pipeline by osbatch import-osi",
        "source": source,
        "inference": backend.settings,
        "sink": {"opensearch": {"endpoint": endpoint}, **sink, "field_map": field_map},
    }
