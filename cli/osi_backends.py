"""The inference side of `osbatch import-osi`: the ml_inference processor's service and model, and the
ML Commons connector behind that model, as an osbatch `inference:` section.

An OSI pipeline names its model by ML Commons model id only (Data Prepper, "ML inference processor":
https://docs.opensearch.org/latest/data-prepper/pipelines/configuration/processors/ml-inference/). What the
model runs (the SageMaker model and its CreateTransformJob settings, or the Bedrock model) lives in the
model's connector, so it comes from `--connector` (that connector) or `--model` (just the model's name):
- service_name sagemaker: osbatch's `ml-commons` backend, the same route (ML Commons `_batch_predict` through
  the SageMaker batch connector blueprint of AWS's page "Using an OpenSearch Ingestion pipeline with machine
  learning offline batch inference"); osbatch registers its own model from these settings with
  `osbatch setup`.
- service_name bedrock: osbatch's `bedrock` backend, which calls CreateModelInvocationJob itself (osbatch has
  no ML Commons route to Bedrock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cli.osi_documents import OsiImportError
from cli.osi_notes import Notes, join
from osbatch.config import BedrockModelFamily

CONNECTOR = "connector"
# CreateTransformJob settings of the blueprint's parameters that osbatch's SageMakerJobConfig takes as is.
SAGEMAKER_SETTINGS: tuple[str, ...] = (
    "ModelName",
    "DataProcessing",
    "TransformResources",
    "MaxConcurrentTransforms",
    "BatchStrategy",
    "MaxPayloadInMB",
)
# Per-job locations and names: osbatch sets them for each job (its own input part and output prefix).
PER_JOB = {
    "TransformJobName": "osbatch names each transform job after its osbatch job",
    "DataSource": "osbatch points each transform job at its own prepared input part",
    "S3OutputPath": "osbatch gives each transform job its own output prefix in the stack's output bucket",
}
# Bedrock request bodies osbatch has a template for, by model id (InvokeModel's body for that model family).
BEDROCK_FAMILIES = (
    ("amazon.titan-embed-text-v2", BedrockModelFamily.TITAN_EMBED_V2, "$.modelOutput.embedding"),
    ("cohere.embed", BedrockModelFamily.COHERE_EMBED, "$.modelOutput.embeddings[0]"),
    ("anthropic.", BedrockModelFamily.ANTHROPIC_MESSAGES, "$.modelOutput.content[0].text"),
)
TITAN_SIZES = (256, 512, 1024)


@dataclass(frozen=True)
class Inference:
    settings: dict[str, Any]  # inference.<backend> and inference.backend
    text_path: str | None  # what the model reads from each record, when the connector says
    result_path: str  # where the model's answer is in an output line


def _missing_model(where: str, model_id: str, service: str) -> OsiImportError:
    what = "SageMaker model" if service == "sagemaker" else "Bedrock model id"
    return OsiImportError(
        f"{where}.model_id: ML Commons model '{model_id}' runs a {what} the pipeline does not name; pass "
        f"--connector FILE (its connector: GET /_plugins/_ml/connectors/<connector_id>) or --model NAME"
    )


def sagemaker_inference(
    name: str, where: str, model_id: str, connector: dict[str, Any] | None, model: str | None, notes: Notes
) -> Inference:
    parameters = connector["parameters"] if connector else {}
    job: dict[str, Any] = {}
    batch = f"{name}-batch"
    base = "inference.ml_commons.sagemaker"
    for key in SAGEMAKER_SETTINGS:
        if key in parameters:
            job[key] = parameters[key]
            notes.map(join(f"{CONNECTOR}.parameters", key), f"{base}.{key}")
    for section, dropped in (("TransformInput", "DataSource"), ("TransformOutput", "S3OutputPath")):
        values = parameters.get(section)
        if isinstance(values, dict):
            job[section] = {key: value for key, value in values.items() if key != dropped}
            for key in job[section]:
                notes.map(f"{CONNECTOR}.parameters.{section}.{key}", f"{base}.{section}.{key}")
            if dropped in values:
                notes.skip(f"{CONNECTOR}.parameters.{section}.{dropped}", PER_JOB[dropped])
    if "TransformJobName" in parameters:
        notes.skip(f"{CONNECTOR}.parameters.TransformJobName", PER_JOB["TransformJobName"])
    if model is not None:
        job["ModelName"] = model
        notes.map("--model", f"{base}.ModelName")
    if "ModelName" not in job:
        raise _missing_model(where, model_id, "sagemaker")
    ml_commons: dict[str, Any] = {"model": batch, "sagemaker": job}
    if "region" in parameters:
        ml_commons["region"] = parameters["region"]
        notes.map(f"{CONNECTOR}.parameters.region", "inference.ml_commons.region")
    notes.default(
        "inference.ml_commons.model",
        batch,
        "the ML Commons model osbatch registers (`osbatch setup`) with its own SageMaker batch connector "
        "built from inference.ml_commons.sagemaker",
    )
    notes.skip(
        f"{where}.model_id",
        f"model '{model_id}' is registered on the OSI pipeline's domain; osbatch registers its own, "
        f"'{batch}', from the same blueprint settings",
    )
    _skip_connector_rest(connector, notes)
    filter_path = job.get("DataProcessing", {}).get("InputFilter")
    return Inference(
        settings={"backend": "ml-commons", "ml_commons": ml_commons},
        text_path=filter_path if isinstance(filter_path, str) else None,
        result_path="$.SageMakerOutput",
    )


def bedrock_inference(
    where: str, model_id: str, connector: dict[str, Any] | None, model: str | None, notes: Notes
) -> Inference:
    parameters = connector["parameters"] if connector else {}
    bedrock_model = model or parameters.get("model")
    if not isinstance(bedrock_model, str) or not bedrock_model:
        raise _missing_model(where, model_id, "bedrock")
    notes.map("--model" if model else f"{CONNECTOR}.parameters.model", "inference.bedrock.model_id")
    family = next(((f, path) for prefix, f, path in BEDROCK_FAMILIES if prefix in bedrock_model), None)
    if family is None:
        known = ", ".join(prefix.rstrip(".") for prefix, _, _ in BEDROCK_FAMILIES)
        raise OsiImportError(
            f"{where}: Bedrock model '{bedrock_model}' has no osbatch request template (osbatch builds "
            f"modelInput for {known} models)"
        )
    settings: dict[str, Any] = {"model_id": bedrock_model, "family": family[0].value}
    notes.default("inference.bedrock.family", family[0].value, f"the request body of '{bedrock_model}'")
    if family[0] is BedrockModelFamily.TITAN_EMBED_V2:
        for key in ("dimensions", "normalize"):
            if key in parameters and (key != "dimensions" or parameters[key] in TITAN_SIZES):
                settings[key] = parameters[key]
                notes.map(f"{CONNECTOR}.parameters.{key}", f"inference.bedrock.{key}")
    for key in ("roleArn", "region"):
        if key in parameters:
            notes.skip(
                f"{CONNECTOR}.parameters.{key}",
                "osbatch's Bedrock jobs run in the stack's region as its BedrockJobRoleArn",
            )
    notes.skip(
        f"{where}.model_id",
        f"model '{model_id}' is an ML Commons model; osbatch calls Bedrock's CreateModelInvocationJob with "
        f"'{bedrock_model}' itself",
    )
    _skip_connector_rest(connector, notes)
    return Inference(
        settings={"backend": "bedrock", "bedrock": settings}, text_path=None, result_path=family[1]
    )


def _skip_connector_rest(connector: dict[str, Any] | None, notes: Notes) -> None:
    if connector is None:
        return
    if "credential" in connector:
        notes.skip(
            f"{CONNECTOR}.credential",
            "osbatch's connector signs as the role `osbatch setup --connector-role-arn` names (on AWS the "
            "stack's)",
        )
    for index, action in enumerate(connector.get("actions") or []):
        kind = action.get("action_type") if isinstance(action, dict) else None
        reason = (
            "a real-time endpoint: for neural queries, declare it under models: (docs/search.md)"
            if kind == "predict"
            else "osbatch builds the blueprint's batch actions itself (osbatch/search/batch_connector.py)"
        )
        notes.skip(f"{CONNECTOR}.actions[{index}]", f"{kind}: {reason}")
    for key in ("name", "version", "description", "protocol"):
        if key in connector:
            notes.skip(
                f"{CONNECTOR}.{key}", "the connector's own metadata; osbatch names its connector itself"
            )
    notes.finish(connector, CONNECTOR)
