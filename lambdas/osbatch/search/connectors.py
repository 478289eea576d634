"""ML Commons connector bodies: one per remote model, shaped by its task and by where it runs.

Locally a connector calls the local model server over plain HTTP; on AWS it calls a SageMaker endpoint or a
Bedrock model, signed with SigV4 as the stack's role (`credential.roleArn`), so no key is ever in a body.
Every task answers in the same shape wherever it runs, so one search pipeline config works on both:
- text_embedding: a list of vectors, read by `connector.post_process.default.embedding` (Bedrock: its own);
- text_similarity: `{"label", "score"}`, a Hugging Face cross-encoder's answer;
- generate: `{"response": "..."}` (Bedrock's answer is reshaped by a post-process script).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osbatch.search_config import ModelSpec, Task

JSON_HEADERS = {"content-type": "application/json"}
DEFAULT_EMBEDDING_PRE = "connector.pre_process.default.embedding"
DEFAULT_EMBEDDING_POST = "connector.post_process.default.embedding"
BEDROCK_EMBEDDING_PRE = "connector.pre_process.bedrock.embedding"
BEDROCK_EMBEDDING_POST = "connector.post_process.bedrock.embedding"
LOCAL_ROUTES = {
    Task.TEXT_EMBEDDING: "/embed",
    Task.TEXT_SIMILARITY: "/similarity",
    Task.GENERATE: "/generate",
}
# What `${parameters.*}` the model reads, rendered into the request body.
REQUEST_BODIES = {
    Task.TEXT_EMBEDDING: "${parameters.input}",
    Task.TEXT_SIMILARITY: '{ "inputs": ${parameters.inputs} }',
    Task.GENERATE: '{ "prompt": "${parameters.prompt}" }',
}
BEDROCK_GENERATE_BODY = (
    '{ "anthropic_version": "bedrock-2023-05-31", "max_tokens": 1024, '
    '"messages": [{"role": "user", "content": [{"type": "text", "text": "${parameters.prompt}"}]}] }'
)
# Claude's messages answer, reshaped into the `{"response": ...}` every generate model answers with.
BEDROCK_GENERATE_POST = (
    'def json = "{" + "\\"name\\": \\"response\\"," + "\\"dataAsMap\\": {" + '
    '"\\"response\\":\\"" + escape(params.content[0].text) + "\\"}" + "}"; return json;'
)


class ConnectorTargetError(ValueError):
    """A model cannot be connected where it is being provisioned."""


@dataclass(frozen=True)
class ConnectorTarget:
    """Where remote models run: the local model server, or AWS with the role connectors sign as.

    aws_endpoint_url: the local AWS emulator, which the batch connector (search/batch_connector.py) calls
    instead of SageMaker."""

    model_server_url: str | None = None
    role_arn: str | None = None
    region: str | None = None
    aws_endpoint_url: str | None = None

    @property
    def local(self) -> bool:
        return self.model_server_url is not None


def connector_body(model: ModelSpec, target: ConnectorTarget) -> dict[str, Any]:
    if model.remote is None:
        raise ConnectorTargetError(f"model {model.name} is not a remote model; it has no connector")
    base: dict[str, Any] = {
        "name": f"osbatch {model.name}",
        "description": model.description or f"osbatch {model.task.value} model {model.name}",
        "version": "1",
    }
    if target.local:
        return {**base, **_local(model, str(target.model_server_url))}
    return {**base, **_aws(model, target)}


def _local(model: ModelSpec, server: str) -> dict[str, Any]:
    bedrock = model.remote.bedrock if model.remote else None
    # The size a Titan query model answers in on AWS, which the local model server gives too.
    size = f"?dimensions={bedrock.dimensions}" if bedrock and bedrock.dimensions else ""
    action: dict[str, Any] = {
        "action_type": "predict",
        "method": "POST",
        "url": f"{server.rstrip('/')}{LOCAL_ROUTES[model.task]}{size}",
        "headers": JSON_HEADERS,
        "request_body": REQUEST_BODIES[model.task],
    }
    if model.task is Task.TEXT_EMBEDDING:
        action |= {
            "pre_process_function": DEFAULT_EMBEDDING_PRE,
            "post_process_function": DEFAULT_EMBEDDING_POST,
        }
    # An http connector must carry a non-empty credential, even for an endpoint that takes none.
    return {
        "protocol": "http",
        "credential": {"key": "unused by the local model server"},
        "actions": [action],
    }


def _aws(model: ModelSpec, target: ConnectorTarget) -> dict[str, Any]:
    assert model.remote is not None
    if not target.role_arn:
        raise ConnectorTargetError(f"model {model.name}: connectors on AWS sign as a role; none was given")
    remote = model.remote
    if remote.sagemaker is not None:
        region = remote.sagemaker.region or target.region
        service = "sagemaker"
        url = f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{remote.sagemaker.endpoint}/invocations"
        action: dict[str, Any] = {"request_body": REQUEST_BODIES[model.task]}
        if model.task is Task.TEXT_EMBEDDING:
            action |= {
                "pre_process_function": DEFAULT_EMBEDDING_PRE,
                "post_process_function": DEFAULT_EMBEDDING_POST,
            }
    elif remote.bedrock is not None:
        region = remote.bedrock.region or target.region
        service = "bedrock"
        url = f"https://bedrock-runtime.{region}.amazonaws.com/model/{remote.bedrock.model}/invoke"
        if model.task is Task.TEXT_EMBEDDING:
            size = f', "dimensions": {remote.bedrock.dimensions}' if remote.bedrock.dimensions else ""
            action = {
                "request_body": '{ "inputText": "${parameters.inputText}"' + size + " }",
                "pre_process_function": BEDROCK_EMBEDDING_PRE,
                "post_process_function": BEDROCK_EMBEDDING_POST,
            }
        else:
            action = {"request_body": BEDROCK_GENERATE_BODY, "post_process_function": BEDROCK_GENERATE_POST}
    else:
        raise ConnectorTargetError(
            f"model {model.name} names no sagemaker endpoint or bedrock model; it can only run locally"
        )
    if not region:
        raise ConnectorTargetError(f"model {model.name}: no region for its {service} connector")
    return {
        "protocol": "aws_sigv4",
        "credential": {"roleArn": target.role_arn},
        "parameters": {"region": region, "service_name": service},
        "actions": [
            {"action_type": "predict", "method": "POST", "url": url, "headers": JSON_HEADERS, **action}
        ],
    }
