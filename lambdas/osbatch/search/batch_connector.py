"""The ML Commons batch connector of the `ml-commons` backend, built from the pipeline config.

It is the SageMaker batch connector blueprint of AWS's page "Using an OpenSearch Ingestion pipeline with
machine learning offline batch inference":
https://docs.aws.amazon.com/opensearch-service/latest/developerguide/configure-clients-ml-commons-batch.html

Three actions: `batch_predict` (CreateTransformJob), `batch_predict_status` (DescribeTransformJob) and
`cancel_batch_predict` (StopTransformJob), each with its own `request_body`. ML Commons derives a missing
status or cancel body from the batch_predict URL, and throws ("Please configure the action type to get the
batch job details in the connector") unless that URL names sagemaker, openai, bedrock or cohere
(ConnectorUtils.createConnectorAction, 3.6), so osbatch never leaves it to that rule.

The connector holds what every job shares; each `_batch_predict` request adds the job's own parameters
(`batch_parameters`), which ML Commons lets override the connector's. On AWS the connector signs its
SageMaker calls with SigV4 as the connector role (`credential.roleArn`), with no key in any body. Locally it
calls the AWS emulator, which accepts any signature, with the emulator's fixed dummy keys; the blueprint's
path-style URLs (`/CreateTransformJob`) are kept under a `/sagemaker/` prefix the emulator routes
(local/emulators/sagemaker_paths.py).
"""

from __future__ import annotations

from typing import Any

from osbatch.config import MlCommonsJobConfig, PipelineConfig
from osbatch.search.connectors import JSON_HEADERS, ConnectorTarget, ConnectorTargetError

BATCH_PREDICT = "batch_predict"
BATCH_PREDICT_STATUS = "batch_predict_status"
CANCEL_BATCH_PREDICT = "cancel_batch_predict"
SERVICE = "sagemaker"
# The hosts ML Commons' derived-body rule recognises, in the order it tries them (ConnectorAction 3.6).
DERIVABLE_SERVERS = ("sagemaker", "openai", "bedrock", "cohere")
# The action name each connector action calls, as the blueprint puts it in the URL path.
OPERATIONS = {
    BATCH_PREDICT: "CreateTransformJob",
    BATCH_PREDICT_STATUS: "DescribeTransformJob",
    CANCEL_BATCH_PREDICT: "StopTransformJob",
}
# The blueprint's methods: the status call is a GET that carries its body.
METHODS = {BATCH_PREDICT: "POST", BATCH_PREDICT_STATUS: "GET", CANCEL_BATCH_PREDICT: "POST"}
# The blueprint's batch_predict body, plus MaxPayloadInMB (a SageMakerJobConfig setting). Objects and
# numbers are substituted unquoted: ML Commons keeps a parameter given as an object as its JSON text.
CREATE_BODY = (
    '{ "BatchStrategy": "${parameters.BatchStrategy}", "ModelName": "${parameters.ModelName}", '
    '"DataProcessing": ${parameters.DataProcessing}, '
    '"MaxConcurrentTransforms": ${parameters.MaxConcurrentTransforms}, '
    '"MaxPayloadInMB": ${parameters.MaxPayloadInMB}, "TransformInput": ${parameters.TransformInput}, '
    '"TransformJobName": "${parameters.TransformJobName}", "TransformOutput": ${parameters.TransformOutput}, '
    '"TransformResources": ${parameters.TransformResources} }'
)
# ML Commons fills TransformJobName from the task's remote_job (from TransformJobArn if need be).
JOB_NAME_BODY = '{ "TransformJobName": "${parameters.TransformJobName}" }'
REQUEST_BODIES = {
    BATCH_PREDICT: CREATE_BODY,
    BATCH_PREDICT_STATUS: JOB_NAME_BODY,
    CANCEL_BATCH_PREDICT: JOB_NAME_BODY,
}
LOCAL_PATH_PREFIX = "/sagemaker"
# The AWS emulator's fixed keys (local/aws session()): it accepts any, and these reach no real account.
LOCAL_KEYS = {"access_key": "testing", "secret_key": "testing"}
LOCAL_REGION = "us-east-1"


def settings_of(config: PipelineConfig) -> MlCommonsJobConfig:
    settings = config.inference.ml_commons
    if settings is None:
        raise ConnectorTargetError(f"pipeline {config.name} has no inference.ml_commons section")
    return settings


def derives_request_body(url: str) -> bool:
    """Whether ML Commons could derive a missing status or cancel body from this batch_predict URL
    (it matches the names case-sensitively, anywhere in the URL); if not, it throws."""
    return any(server in url for server in DERIVABLE_SERVERS)


def action_url(action: str, target: ConnectorTarget, region: str) -> str:
    operation = OPERATIONS[action]
    if target.aws_endpoint_url:
        return f"{target.aws_endpoint_url.rstrip('/')}{LOCAL_PATH_PREFIX}/{operation}"
    return f"https://api.sagemaker.{region}.amazonaws.com/{operation}"


def batch_connector_body(config: PipelineConfig, target: ConnectorTarget) -> dict[str, Any]:
    settings = settings_of(config)
    local = bool(target.aws_endpoint_url)
    region = LOCAL_REGION if local else (settings.region or target.region)
    if not region:
        raise ConnectorTargetError(f"pipeline {config.name}: no region for its SageMaker batch connector")
    if local:
        credential: dict[str, str] = dict(LOCAL_KEYS)
    elif target.role_arn:
        credential = {"roleArn": target.role_arn}
    else:
        raise ConnectorTargetError(
            f"pipeline {config.name}: the batch connector signs as a role on AWS; none was given"
        )
    job = settings.sagemaker
    # Everything the jobs share; the locations and the job name come with each _batch_predict.
    parameters: dict[str, Any] = {
        "region": region,
        "service_name": SERVICE,
        "ModelName": job.ModelName,
        "DataProcessing": job.DataProcessing,
        "TransformInput": job.TransformInput,
        "TransformOutput": job.TransformOutput,
        "TransformResources": job.TransformResources,
        "MaxConcurrentTransforms": job.MaxConcurrentTransforms,
        "MaxPayloadInMB": job.MaxPayloadInMB,
        "BatchStrategy": job.BatchStrategy,
    }
    actions = [
        {
            "action_type": action,
            "method": METHODS[action],
            "url": action_url(action, target, region),
            "headers": JSON_HEADERS,
            "request_body": REQUEST_BODIES[action],
        }
        for action in (BATCH_PREDICT, BATCH_PREDICT_STATUS, CANCEL_BATCH_PREDICT)
    ]
    return {
        "name": f"osbatch {config.name} batch",
        "description": f"osbatch {config.name}: SageMaker Batch Transform through ML Commons _batch_predict",
        "version": "1",
        "protocol": "aws_sigv4",
        "credential": credential,
        "parameters": parameters,
        "actions": actions,
    }


def batch_parameters(
    settings: MlCommonsJobConfig, job_name: str, input_uri: str, output_uri: str
) -> dict[str, Any]:
    """One job's `_batch_predict` parameters: its name and its prepared input and output prefixes."""
    job = settings.sagemaker
    return {
        "TransformJobName": job_name,
        "TransformInput": {
            **job.TransformInput,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
        },
        "TransformOutput": {**job.TransformOutput, "S3OutputPath": output_uri},
    }
