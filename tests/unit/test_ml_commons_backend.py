"""The ml-commons backend: connector and request bodies, the state mapping, idempotent submit, cancel."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from opensearchpy.exceptions import NotFoundError, TransportError

from osbatch.backends.base import BackendThrottled, BackendUnavailable
from osbatch.backends.ml_commons import (
    LEDGER_NAME,
    MlCommonsBackend,
    MlCommonsModelMissing,
    state_of,
    status_of,
)
from osbatch.backends.sagemaker import SageMakerBackend
from osbatch.config import ConfigError, MlCommonsJobConfig, PipelineConfig, parse_pipeline
from osbatch.contracts import remote_job_name
from osbatch.models import JobStateName, RemoteJob
from osbatch.search.batch_connector import (
    BATCH_PREDICT,
    BATCH_PREDICT_STATUS,
    CANCEL_BATCH_PREDICT,
    batch_connector_body,
    batch_parameters,
    derives_request_body,
)
from osbatch.search.connectors import ConnectorTarget, ConnectorTargetError
from osbatch.search.ml import MlCommons
from osbatch.search.provision import provision_search
from tests.unit.fake_ml_commons import FakeSearchClient
from tests.unit.helpers import pipeline_dict

ROLE = "arn:aws:iam::123456789012:role/osbatch-connector"
AWS = ConnectorTarget(role_arn=ROLE, region="us-east-1")
LOCAL = ConnectorTarget(model_server_url="http://127.0.0.1:8601", aws_endpoint_url="http://127.0.0.1:4599")
JOB_ID = "msmarco-0123456789abcdef"
NAME = remote_job_name(JOB_ID, 0)  # the job's first remote job
INPUT, OUTPUT = "s3://osb-out/jobs/j/input/", "s3://osb-out/jobs/j/output/"
PARAMETER = re.compile(r"\$\{parameters\.([A-Za-z_]+)\}")


def ml_commons_config(**settings: Any) -> PipelineConfig:
    inference = {
        "backend": "ml-commons",
        "ml_commons": {"model": "msmarco-batch", "sagemaker": {"ModelName": "minilm-embedder"}, **settings},
    }
    return parse_pipeline(pipeline_dict(inference=inference))


def settings(config: PipelineConfig) -> MlCommonsJobConfig:
    assert config.inference.ml_commons is not None
    return config.inference.ml_commons


def render(template: str, parameters: dict[str, Any]) -> Any:
    """What ML Commons sends: connector parameters, overridden by the request's, substituted into the body
    (objects and numbers as their JSON text, as StringUtils.getParameterMap keeps them)."""

    def text(match: re.Match[str]) -> str:
        value = parameters[match.group(1)]
        return value if isinstance(value, str) else json.dumps(value)

    return json.loads(PARAMETER.sub(text, template))


def actions_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {action["action_type"]: action for action in body["actions"]}


# --- connector and request bodies ---


def test_the_aws_connector_is_the_blueprint_signed_as_the_role_with_no_key() -> None:
    # Given an ml-commons pipeline
    body = batch_connector_body(ml_commons_config(), AWS)
    # When it is built for AWS
    actions = actions_of(body)
    # Then it signs with SigV4 as the connector role and holds no key anywhere
    assert (body["protocol"], body["credential"]) == ("aws_sigv4", {"roleArn": ROLE})
    assert "key" not in json.dumps(body).lower()
    assert body["parameters"]["service_name"] == "sagemaker"
    # And its actions are the blueprint's path-style SageMaker calls, with the blueprint's methods
    assert {name: (a["method"], a["url"]) for name, a in actions.items()} == {
        BATCH_PREDICT: ("POST", "https://api.sagemaker.us-east-1.amazonaws.com/CreateTransformJob"),
        BATCH_PREDICT_STATUS: ("GET", "https://api.sagemaker.us-east-1.amazonaws.com/DescribeTransformJob"),
        CANCEL_BATCH_PREDICT: ("POST", "https://api.sagemaker.us-east-1.amazonaws.com/StopTransformJob"),
    }


def test_every_status_and_cancel_action_has_its_own_body_because_local_urls_would_not_derive_one() -> None:
    # Given the local connector, whose URLs name the emulator's host
    local = actions_of(batch_connector_body(ml_commons_config(), LOCAL))
    # Then no action is left for ML Commons to derive (a missing body is derived from the batch_predict URL)
    assert all(action.get("request_body") for action in local.values())
    # And ML Commons' rule matches the names case-sensitively, anywhere: sagemaker, openai, bedrock, cohere
    assert derives_request_body(local[BATCH_PREDICT]["url"])  # the /sagemaker/ path names it
    assert derives_request_body("https://api.openai.com/v1/batches")
    assert not derives_request_body("http://127.0.0.1:4599/CreateTransformJob")
    assert not derives_request_body("https://api.SageMaker.us-east-1.amazonaws.com/CreateTransformJob")


def test_the_local_connector_calls_the_emulator_with_its_dummy_keys() -> None:
    # Given the local target
    body = batch_connector_body(ml_commons_config(), LOCAL)
    # Then every action goes to the AWS emulator, signed for sagemaker in the emulator's region
    assert all(a["url"].startswith("http://127.0.0.1:4599/sagemaker/") for a in body["actions"])
    assert body["credential"] == {"access_key": "testing", "secret_key": "testing"}
    assert body["parameters"]["region"] == "us-east-1"


def test_an_aws_connector_without_a_role_is_refused() -> None:
    with pytest.raises(ConnectorTargetError, match="signs as a role"):
        batch_connector_body(ml_commons_config(), ConnectorTarget(region="us-east-1"))


def test_the_rendered_create_request_is_the_sagemaker_backends_transform_job() -> None:
    # Given the connector's parameters and one job's _batch_predict parameters
    config = ml_commons_config(sagemaker={"ModelName": "minilm-embedder", "MaxConcurrentTransforms": 2})
    connector = batch_connector_body(config, AWS)
    name = NAME
    parameters = {**connector["parameters"], **batch_parameters(settings(config), name, INPUT, OUTPUT)}
    # When ML Commons renders the batch_predict body
    sent = render(actions_of(connector)[BATCH_PREDICT]["request_body"], parameters)
    # Then it is the CreateTransformJob request the sagemaker backend sends for the same settings (less Tags)
    captured: dict[str, Any] = {}

    class Capture:
        def create_transform_job(self, **request: Any) -> dict[str, str]:
            captured.update(request)
            return {"TransformJobArn": "arn"}

    SageMakerBackend(settings(config).sagemaker, Capture(), None, {}).submit(NAME, INPUT, OUTPUT)  # type: ignore[arg-type]
    captured.pop("Tags")
    assert sent == captured
    # And the status and cancel bodies name the job
    for action in (BATCH_PREDICT_STATUS, CANCEL_BATCH_PREDICT):
        assert render(actions_of(connector)[action]["request_body"], {"TransformJobName": name}) == {
            "TransformJobName": name
        }


# --- the state mapping ---


@pytest.mark.parametrize(
    ("remote_job", "task_state", "expected"),
    [
        ({"TransformJobArn": "arn"}, "CREATED", JobStateName.RUNNING),  # not described yet
        ({"TransformJobStatus": "InProgress"}, "CREATED", JobStateName.RUNNING),
        ({"TransformJobStatus": "Completed"}, "COMPLETED", JobStateName.COMPLETED),
        ({"status": "complete"}, "COMPLETED", JobStateName.COMPLETED),
        ({"TransformJobStatus": "Stopping"}, "CANCELLING", JobStateName.CANCELLING),
        ({"status": "cancelling"}, "CANCELLING", JobStateName.CANCELLING),
        ({"TransformJobStatus": "Stopped"}, "CANCELLED", JobStateName.CANCELLED),
        ({"status": "CANCELLED"}, "CANCELLED", JobStateName.CANCELLED),
        ({"status": "Expired"}, "EXPIRED", JobStateName.EXPIRED),
        ({"status": "timeout"}, "EXPIRED", JobStateName.EXPIRED),
        ({"TransformJobStatus": "Failed"}, "FAILED", JobStateName.FAILED),
        ({"status": "Submitted"}, "CREATED", JobStateName.RUNNING),  # anything else
        ({"TransformJobArn": "arn"}, "UNREACHABLE", JobStateName.UNREACHABLE),  # ML Commons' poller gave up
    ],
)
def test_remote_statuses_map_as_ml_commons_maps_them(
    remote_job: dict[str, Any], task_state: str, expected: JobStateName
) -> None:
    assert state_of({"state": task_state, "remote_job": remote_job}) is expected


def test_partially_completed_stays_partial_though_ml_commons_says_completed() -> None:
    # Given a task ML Commons marked COMPLETED for a PartiallyCompleted remote job (Bedrock's status)
    task = {"state": "COMPLETED", "remote_job": {"status": "PartiallyCompleted"}}
    # Then osbatch reports PARTIALLY_COMPLETED, with the remote status named
    status = status_of(task)
    assert status.state is JobStateName.PARTIALLY_COMPLETED
    assert status.reason is not None and "PartiallyCompleted" in status.reason
    assert status.progress["task_state"] == "COMPLETED"


@pytest.mark.parametrize(
    "remote_job",
    [
        {"status": "Completed", "errorRecordCount": 2},
        {"status": "completed", "request_counts": {"total": 5, "completed": 3, "failed": 2}},
    ],
)
def test_a_completed_job_that_counts_failed_records_is_partially_completed(
    remote_job: dict[str, Any],
) -> None:
    status = status_of({"state": "COMPLETED", "remote_job": remote_job})
    assert status.state is JobStateName.PARTIALLY_COMPLETED
    assert status.reason is not None and "2 failed records" in status.reason


def test_a_failed_job_reports_sagemakers_reason() -> None:
    task = {"state": "FAILED", "remote_job": {"TransformJobStatus": "Failed", "FailureReason": "no model"}}
    assert (status_of(task).state, status_of(task).reason) == (JobStateName.FAILED, "no model")


# --- submit, status and cancel against an ML Commons that keeps tasks as the node does ---


class FakeBatchNode:
    """ML Commons' batch paths over a SageMaker that keeps job names unique (ResourceInUse on reuse)."""

    def __init__(self) -> None:
        self.models = {"m1": {"name": "msmarco-batch"}}
        self.jobs: dict[str, str] = {}  # transform job name -> status
        self.tasks: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.refuse_with: TransportError | None = None
        self._ids = (f"task{n}" for n in itertools.count(1))

    def perform_request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        self.calls.append((method, path))
        parts = path.strip("/").split("/")
        if path == "/_plugins/_ml/models/_search":
            name = body["query"]["bool"]["must"][0]["term"]["name.keyword"]
            return {
                "hits": {
                    "hits": [{"_id": i, "_source": m} for i, m in self.models.items() if m["name"] == name]
                }
            }
        if parts[-1] == "_batch_predict":
            if self.refuse_with is not None:
                raise self.refuse_with
            name = body["parameters"]["TransformJobName"]
            if name in self.jobs:
                answer = {"__type": "ResourceInUse", "Message": f"{name} already exists"}
                reason = f"Error from remote service: {json.dumps(answer)}"
                raise TransportError(400, "status_exception", {"error": {"reason": reason}})
            self.jobs[name] = "InProgress"
            arn = f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}"
            task_id = next(self._ids)
            self.tasks[task_id] = {"model_id": parts[3], "remote_job": {"TransformJobArn": arn}}
            return {"task_id": task_id, "status": "CREATED", "remote_job": {"TransformJobArn": arn}}
        if path == "/_plugins/_ml/tasks/_search":
            return {"hits": {"hits": [{"_id": i, "_source": t} for i, t in self.tasks.items()]}}
        if parts[:3] == ["_plugins", "_ml", "tasks"]:
            if parts[3] not in self.tasks:
                raise NotFoundError(404, "status_exception", {})
            task = self.tasks[parts[3]]
            name = task["remote_job"]["TransformJobArn"].rsplit("/", 1)[1]
            if parts[-1] == "_cancel":
                if self.jobs[name] != "InProgress":
                    raise TransportError(400, "status_exception", "Error from remote service: job ended")
                self.jobs[name] = "Stopping"
                return {"status": "OK"}
            task["remote_job"] |= {"TransformJobName": name, "TransformJobStatus": self.jobs[name]}
            return {"state": "CREATED", **task}
        raise AssertionError(f"unexpected call {method} {path}")


class Client:
    def __init__(self, transport: FakeBatchNode) -> None:
        self.transport = transport


def batch_backend(node: FakeBatchNode, s3: Any) -> MlCommonsBackend:
    return MlCommonsBackend(settings(ml_commons_config()), MlCommons(Client(node)), s3)


def batch_predicts(node: FakeBatchNode) -> int:
    return sum(1 for _, path in node.calls if path.endswith("_batch_predict"))


def test_submit_records_the_task_and_a_rerun_finds_it_without_a_second_batch_predict(s3: Any) -> None:
    # Given a registered batch model
    node = FakeBatchNode()
    backend = batch_backend(node, s3)
    # When the job is submitted twice (a re-run of StartJob)
    first = backend.submit(NAME, INPUT, OUTPUT)
    second = backend.submit(NAME, INPUT, OUTPUT)
    # Then one remote job exists, and both runs name its task; the ledger is under the job's output prefix
    assert batch_predicts(node) == 1 and first == second
    assert first.id == "task1" and first.arn.endswith(f"/{NAME}")
    ledger = json.loads(s3.get_object(Bucket="osb-out", Key=f"jobs/j/output/{LEDGER_NAME}")["Body"].read())
    assert (ledger["task_id"], ledger["model_id"]) == ("task1", "m1")


def test_a_rerun_that_lost_its_ledger_finds_the_task_that_names_the_job(s3: Any) -> None:
    # Given a job submitted, and the ledger gone (the function died between the two calls)
    node = FakeBatchNode()
    backend = batch_backend(node, s3)
    created = backend.submit(NAME, INPUT, OUTPUT)
    s3.delete_object(Bucket="osb-out", Key=f"jobs/j/output/{LEDGER_NAME}")
    # When StartJob runs again, SageMaker answers ResourceInUse through ML Commons
    again = backend.submit(NAME, INPUT, OUTPUT)
    # Then it is the same task, and no second job was created
    assert again.id == created.id and len(node.jobs) == 1


def test_ml_commons_cap_on_batch_tasks_is_throttling(s3: Any) -> None:
    node = FakeBatchNode()
    node.refuse_with = TransportError(
        429, "status_exception", "Exceeded maximum limit for BATCH_PREDICTION tasks"
    )
    with pytest.raises(BackendThrottled, match="429"):
        batch_backend(node, s3).submit(NAME, INPUT, OUTPUT)


def test_remote_throttling_through_ml_commons_is_throttling(s3: Any) -> None:
    node = FakeBatchNode()
    reason = 'Error from remote service: {"__type":"ThrottlingException","message":"Rate exceeded"}'
    node.refuse_with = TransportError(400, "status_exception", {"error": {"reason": reason}})
    with pytest.raises(BackendThrottled, match="ThrottlingException"):
        batch_backend(node, s3).submit(NAME, INPUT, OUTPUT)


def test_submit_without_the_registered_model_says_to_run_setup(s3: Any) -> None:
    node = FakeBatchNode()
    node.models.clear()
    with pytest.raises(MlCommonsModelMissing, match="osbatch setup"):
        batch_backend(node, s3).submit(NAME, INPUT, OUTPUT)
    assert batch_predicts(node) == 0


def test_status_follows_the_remote_job_and_a_failed_status_call_is_unavailable(s3: Any) -> None:
    node = FakeBatchNode()
    backend = batch_backend(node, s3)
    remote = backend.submit(NAME, INPUT, OUTPUT)
    assert backend.status(remote).state is JobStateName.RUNNING
    node.jobs[NAME] = "Completed"
    assert backend.status(remote).state is JobStateName.COMPLETED
    with pytest.raises(BackendUnavailable):
        backend.status(RemoteJob(id="missing", output_uri=OUTPUT))


def test_cancel_stops_a_running_job_and_a_late_cancel_is_a_no_op(s3: Any) -> None:
    node = FakeBatchNode()
    backend = batch_backend(node, s3)
    remote = backend.submit(NAME, INPUT, OUTPUT)
    # When a running job is cancelled, then it is stopping
    backend.cancel(remote)
    assert backend.status(remote).state is JobStateName.CANCELLING
    # When it has ended and is cancelled again, nothing is raised
    node.jobs[NAME] = "Completed"
    backend.cancel(remote)


# --- config ---


def test_the_ml_commons_backend_needs_its_section_and_a_model_name_of_its_own() -> None:
    with pytest.raises(ConfigError, match=r"inference\.ml_commons"):
        parse_pipeline(pipeline_dict(inference={"backend": "ml-commons"}))
    embedder = {"name": "msmarco-batch", "task": "text_embedding", "remote": {"sagemaker": {"endpoint": "e"}}}
    inference = {
        "backend": "ml-commons",
        "ml_commons": {"model": "msmarco-batch", "sagemaker": {"ModelName": "m"}},
    }
    with pytest.raises(ConfigError, match="a name of its own"):
        parse_pipeline(pipeline_dict(inference=inference, models=[embedder]))


# --- provisioning the batch model ---


def test_setup_registers_the_batch_model_once_and_updates_it_in_place_when_the_job_settings_change() -> None:
    # Given an empty cluster and an ml-commons pipeline
    client = FakeSearchClient()
    first = provision_search(client, ml_commons_config(), target=AWS)
    model_id = first.model_ids["msmarco-batch"]
    # Then its batch model is created from the batch connector and deployed
    (connector,) = client.transport.connectors.values()
    assert connector == batch_connector_body(ml_commons_config(), AWS)
    assert client.transport.models[model_id]["model_state"] == "DEPLOYED"
    # When setup runs again, nothing is written
    writes = len(client.transport.writes())
    again = provision_search(client, ml_commons_config(), target=AWS)
    assert not again.changed and len(client.transport.writes()) == writes
    # When the transform settings change, the same model's connector is updated in place
    bigger = ml_commons_config(
        sagemaker={
            "ModelName": "minilm-embedder",
            "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 4},
        }
    )
    changed = provision_search(client, bigger, target=AWS)
    assert changed.model_ids["msmarco-batch"] == model_id
    assert {c.name: c.action for c in changed.changes}["msmarco-batch"] == "updated"
    (updated,) = client.transport.connectors.values()
    assert updated["parameters"]["TransformResources"]["InstanceCount"] == 4
