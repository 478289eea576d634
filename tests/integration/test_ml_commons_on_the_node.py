"""The ml-commons backend on the real local runtime: S3 upload -> ML Commons `_batch_predict` on the local
node's own plugin -> its batch connector runs a SageMaker transform job in the AWS emulator -> k-NN index."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from cli.local_search import local_query_embedder
from cli.main import main
from cli.search import semantic_search
from local.deploy import transform_settings
from local.emulators.node_facing import node_facing_host
from local.runtime import LocalRuntime
from osbatch.config import PipelineConfig
from osbatch.dal import JobTable
from osbatch.search.client import opensearch_client
from osbatch.search.ml import MlCommons
from tests.integration.helpers import (
    PIPELINES,
    TOPICS,
    sagemaker_model_environment,
    upload,
    wait_for_end,
    wait_for_remote_jobs,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        node_facing_host() is None,
        reason="no address ML Commons' batch calls can reach (local/emulators/node_facing.py)",
    ),
]
PIPELINE = "e2e-ml-commons"


def run_setup(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["--pipelines", PIPELINES, "setup", "--pipeline", PIPELINE]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def stack(stack: Any) -> Any:
    """The shared stack fixture's stack, and the batch model `osbatch setup` registers."""
    assert main(["--pipelines", PIPELINES, "setup", "--pipeline", PIPELINE]) == 0
    return stack


@pytest.fixture(scope="module")
def ml(runtime: LocalRuntime) -> MlCommons:
    return MlCommons(opensearch_client(runtime.opensearch.url))


def test_setup_run_again_changes_nothing(
    stack: Any, config: PipelineConfig, ml: MlCommons, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the batch model the stack fixture's setup registered
    assert config.inference.ml_commons is not None
    before = ml.find_model(config.inference.ml_commons.model)
    assert before is not None and before["model_state"] == "DEPLOYED"
    # When setup runs again
    out = run_setup(capsys)
    # Then nothing was sent, and it is the same model with the same connector
    assert "nothing changed" in out and f"model {config.inference.ml_commons.model}: unchanged" in out
    after = ml.find_model(config.inference.ml_commons.model)
    assert after is not None
    assert (after["model_id"], after["connector_id"]) == (before["model_id"], before["connector_id"])


def test_an_upload_goes_through_ml_commons_batch_predict_to_searchable_documents(
    stack: Any, config: PipelineConfig, jobs: JobTable, ml: MlCommons, runtime: LocalRuntime
) -> None:
    # Given three records with known neighbours
    records = [{"_id": f"mlc-{name}", "text": text} for name, text in TOPICS]
    body = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    # When the file is uploaded
    job_id = upload(stack, config, f"mlc-{time.time_ns()}.jsonl", body)
    job = wait_for_end(jobs, job_id)
    # Then every record is indexed
    assert (job["state"], job["records_in"], job["indexed"], job["dead_lettered"]) == ("COMPLETED", 3, 3, 0)
    # And the remote job is an ML Commons batch task whose remote job is the transform job
    ((remote,),) = [job["remote_jobs"]]
    task = ml.get_task(remote["id"])
    assert (task["task_type"], task["function_name"], task["state"]) == (
        "BATCH_PREDICTION",
        "REMOTE",
        "COMPLETED",
    )
    assert task["remote_job"]["TransformJobStatus"] == "Completed"
    assert task["remote_job"]["TransformJobArn"] == remote["arn"]
    # And a k-NN query finds the right document first
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=config.sink.index)
    hits = semantic_search(
        client, config, "decompress a .gz file", k=3, query_vector=local_query_embedder(config)
    )
    assert hits[0].doc_id == "mlc-gzip"


def test_cancel_goes_through_ml_commons_and_the_job_ends_cancelled(
    stack: Any, config: PipelineConfig, jobs: JobTable, ml: MlCommons, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job whose transform runs until it is stopped, so it cannot finish before the cancel
    settings = transform_settings(config)
    assert settings is not None
    held = {"OSBATCH_LOCAL_HOLD_UNTIL_STOPPED": "true"}
    with sagemaker_model_environment(settings.ModelName, held):
        job_id = upload(
            stack, config, f"mlc-cancel-{time.time_ns()}.jsonl", b'{"_id": "c", "text": "held"}\n'
        )
        wait_for_remote_jobs(jobs, job_id)
        # When the user cancels it (POST /_plugins/_ml/tasks/<id>/_cancel)
        assert main(["--pipelines", PIPELINES, "cancel", job_id]) == 0
        job = wait_for_end(jobs, job_id)
    # Then the job ends CANCELLED with nothing indexed, and ML Commons' task says so too
    assert "cancelling" in capsys.readouterr().out
    assert (job["state"], job.get("indexed", 0)) == ("CANCELLED", 0)
    task = ml.get_task(job["remote_jobs"][0]["id"])
    assert (task["state"], task["remote_job"]["TransformJobStatus"]) == ("CANCELLED", "Stopped")
