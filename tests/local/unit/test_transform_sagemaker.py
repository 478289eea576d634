"""Batch Transform inside moto (in-process mock_aws): the job really embeds, and behaves like SageMaker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import local.emulators
from local.model import Embedder
from tests.local.unit.sagemaker_helpers import (
    BUCKET,
    REGION,
    ROLE,
    output_keys,
    output_lines,
    put_lines,
    start_job,
    wait_for_end,
)


@pytest.fixture
def moto_sagemaker(minilm: Embedder) -> Iterator[tuple[Any, Any]]:
    local.emulators.install()  # in-process: the worker's S3 client runs inside the mock
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        sagemaker.create_model(ModelName="minilm", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "local"})
        yield s3, sagemaker
    local.emulators.uninstall()  # other test modules expect plain moto


def cosine(a: Sequence[float], b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_each_object_line_gets_its_vector_under_sagemaker_output(
    moto_sagemaker: Any, minilm: Embedder
) -> None:
    # Given two JSONL objects under the input prefix, one in a subfolder
    s3, sagemaker = moto_sagemaker
    records = [{"_id": "1", "text": "what is amber"}, {"_id": "2", "text": "hello world", "lang": "en"}]
    put_lines(s3, "in/part-0.jsonl", records)
    put_lines(s3, "in/more/part-1.jsonl", [{"_id": "3", "text": "harry potter"}])

    # When a transform job with InputFilter $.text and JoinSource Input runs to the end
    start_job(sagemaker)
    job = wait_for_end(sagemaker)

    # Then it completed and each input object has its .out, named by its path below the prefix
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert sorted(output_keys(s3)) == ["out/more/part-1.jsonl.out", "out/part-0.jsonl.out"]
    lines = output_lines(s3, "out/part-0.jsonl.out")
    # and each line is its input object, in order, plus the model's vector for its text
    assert [{k: v for k, v in line.items() if k != "SageMakerOutput"} for line in lines] == records
    for line in lines:
        assert len(line["SageMakerOutput"]) == 384
        assert cosine(line["SageMakerOutput"], minilm.embed([line["text"]])[0]) > 0.9999


def test_lines_that_are_not_objects_are_wrapped_in_sagemaker_input(moto_sagemaker: Any) -> None:
    # Given lines that are a bare string and a list of strings
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/raw.jsonl", ["what is amber", ["hello world", "harry potter"]])

    # When the whole line is the model input ($) and joined with the input
    start_job(sagemaker, DataProcessing={"InputFilter": "$", "JoinSource": "Input"})
    job = wait_for_end(sagemaker)

    # Then each output line is {"SageMakerInput", "SageMakerOutput"}: one vector per string
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    single, pair = output_lines(s3, "out/raw.jsonl.out")
    assert single["SageMakerInput"] == "what is amber"
    assert len(single["SageMakerOutput"]) == 384
    assert pair["SageMakerInput"] == ["hello world", "harry potter"]
    assert [len(vector) for vector in pair["SageMakerOutput"]] == [384, 384]


@pytest.mark.parametrize(
    ("output_filter", "expected_keys"),
    [("$.SageMakerOutput", None), ("$['_id','SageMakerOutput']", ["_id", "SageMakerOutput"])],
)
def test_output_filter_selects_from_the_joined_record(
    moto_sagemaker: Any, output_filter: str, expected_keys: Any
) -> None:
    # Given one record with fields the output does not need
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/a.jsonl", [{"_id": "1", "text": "what is amber", "noise": "x" * 50}])

    # When the job joins the input and then applies the OutputFilter
    start_job(
        sagemaker,
        DataProcessing={"InputFilter": "$.text", "JoinSource": "Input", "OutputFilter": output_filter},
    )
    assert wait_for_end(sagemaker)["TransformJobStatus"] == "Completed"

    # Then only the selected part is written: the bare vector, or an object with just the named keys
    (line,) = output_lines(s3, "out/a.jsonl.out")
    if expected_keys is None:
        assert isinstance(line, list) and len(line) == 384
    else:
        assert list(line) == expected_keys


def test_without_join_source_the_output_is_the_model_output_alone(moto_sagemaker: Any) -> None:
    # Given one record
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/a.jsonl", [{"_id": "1", "text": "what is amber"}])

    # When JoinSource is None
    start_job(sagemaker, DataProcessing={"InputFilter": "$.text", "JoinSource": "None"})
    assert wait_for_end(sagemaker)["TransformJobStatus"] == "Completed"

    # Then the line is just the vector
    (line,) = output_lines(s3, "out/a.jsonl.out")
    assert isinstance(line, list) and len(line) == 384


def test_manifest_file_lists_the_inputs_and_names_the_outputs(moto_sagemaker: Any) -> None:
    # Given objects outside any common input prefix, and a manifest naming two of them
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "data/x/one.jsonl", [{"text": "what is amber"}])
    put_lines(s3, "data/y/two.jsonl", [{"text": "hello world"}])
    put_lines(s3, "data/y/ignored.jsonl", [{"text": "not listed"}])
    manifest = [{"prefix": f"s3://{BUCKET}/data/"}, "x/one.jsonl", "y/two.jsonl"]
    s3.put_object(Bucket=BUCKET, Key="manifests/job.manifest", Body=json.dumps(manifest).encode())

    # When the job reads a ManifestFile
    source = {
        "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": f"s3://{BUCKET}/manifests/job.manifest"}
    }
    start_job(
        sagemaker,
        TransformInput={"DataSource": source, "ContentType": "application/json", "SplitType": "Line"},
    )
    job = wait_for_end(sagemaker)

    # Then exactly the listed objects are transformed, named by their manifest paths
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert sorted(output_keys(s3)) == ["out/x/one.jsonl.out", "out/y/two.jsonl.out"]


def test_single_record_and_multi_record_write_identical_output(moto_sagemaker: Any) -> None:
    # Given a few records of different lengths
    s3, sagemaker = moto_sagemaker
    put_lines(
        s3,
        "in/a.jsonl",
        [{"text": "short"}, {"text": "a somewhat longer text about rivers " * 5}, {"text": ""}],
    )

    # When the same input runs once per batch strategy
    for name, strategy in (("multi", "MultiRecord"), ("single", "SingleRecord")):
        output = {"S3OutputPath": f"s3://{BUCKET}/out/{name}", "AssembleWith": "Line"}
        start_job(sagemaker, name, BatchStrategy=strategy, TransformOutput=output)
    assert wait_for_end(sagemaker, "multi")["TransformJobStatus"] == "Completed"
    assert wait_for_end(sagemaker, "single")["TransformJobStatus"] == "Completed"

    # Then the two outputs are byte-for-byte the same, one line per record
    multi = s3.get_object(Bucket=BUCKET, Key="out/multi/a.jsonl.out")["Body"].read()
    single = s3.get_object(Bucket=BUCKET, Key="out/single/a.jsonl.out")["Body"].read()
    assert multi == single
    assert multi.count(b"\n") == 3


def test_status_is_in_progress_then_completed_with_times(moto_sagemaker: Any, minilm: Embedder) -> None:
    # Given an input, and a model that holds its first batch until released
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/a.jsonl", [{"text": "what is amber"}])
    model = GatedEmbedder(minilm, gated_call=1)
    local.emulators.install(embedder_loader=lambda _folder: model)

    # When the job is described while it embeds, and again at its end
    start_job(sagemaker)
    assert model.waiting.wait(timeout=30)
    running = sagemaker.describe_transform_job(TransformJobName="job-1")
    model.gate.set()
    job = wait_for_end(sagemaker)

    # Then it is InProgress with a start but no end time, and ends Completed with both and no FailureReason
    assert running["TransformJobStatus"] == "InProgress"
    assert "TransformStartTime" in running and "TransformEndTime" not in running
    assert job["TransformJobStatus"] == "Completed"
    assert job["TransformStartTime"] <= job["TransformEndTime"]
    assert "FailureReason" not in job


def test_a_line_that_is_not_json_fails_the_job_and_leaves_no_output(moto_sagemaker: Any) -> None:
    # Given an object whose second line is not JSON
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/a.jsonl", [{"text": "fine"}], raw=["{not json", '{"text": "also fine"}'])

    # When the job runs
    start_job(sagemaker)
    job = wait_for_end(sagemaker)

    # Then it fails with a ClientError naming the line, and no partial .out is stored
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(
        "ClientError: Line 2 of s3://osb-data/in/a.jsonl is not valid JSON"
    )
    assert "TransformEndTime" in job
    assert output_keys(s3) == []


def test_an_empty_prefix_fails_the_job_like_sagemaker(moto_sagemaker: Any) -> None:
    # Given / When a job whose input prefix holds no object
    _, sagemaker = moto_sagemaker
    start_job(sagemaker)
    job = wait_for_end(sagemaker)

    # Then it fails with SageMaker's "No S3 objects found" reason
    assert job["TransformJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(
        'ClientError: No S3 objects found under S3 URL "s3://osb-data/in/"'
    )


class GatedEmbedder:
    """The real model, but the n-th embed call waits until the test opens the gate."""

    def __init__(self, inner: Embedder, gated_call: int) -> None:
        self.dimension = inner.dimension
        self._inner = inner
        self._gated_call = gated_call
        self._calls = 0
        self.waiting = threading.Event()
        self.gate = threading.Event()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self._calls += 1
        if self._calls == self._gated_call:
            self.waiting.set()
            self.gate.wait(timeout=30)
        return self._inner.embed(texts)


def test_stop_ends_the_job_stopped_and_stores_no_output(moto_sagemaker: Any, minilm: Embedder) -> None:
    # Given two input objects, and a model that holds its second batch (the second object) until released
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/a.jsonl", [{"text": "what is amber"}])
    put_lines(s3, "in/b.jsonl", [{"text": "hello world"}])
    model = GatedEmbedder(minilm, gated_call=2)
    local.emulators.install(embedder_loader=lambda _folder: model)
    start_job(sagemaker)
    assert model.waiting.wait(timeout=30)

    # When the job is stopped while the second object is in the model
    sagemaker.stop_transform_job(TransformJobName="job-1")
    stopping = sagemaker.describe_transform_job(TransformJobName="job-1")["TransformJobStatus"]
    model.gate.set()
    job = wait_for_end(sagemaker)

    # Then it goes Stopping -> Stopped, and the first object's finished output is not kept either
    assert stopping == "Stopping"
    assert job["TransformJobStatus"] == "Stopped"
    assert output_keys(s3) == []


def test_a_held_model_keeps_its_job_in_progress_until_stopped(moto_sagemaker: Any) -> None:
    # Given a model whose environment holds its jobs, and a job on it
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/a.jsonl", [{"text": "what is amber"}])
    env = {"OSBATCH_LOCAL_HOLD_UNTIL_STOPPED": "true"}
    sagemaker.create_model(
        ModelName="held", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x", "Environment": env}
    )
    start_job(sagemaker, ModelName="held")
    running = sagemaker.describe_transform_job(TransformJobName="job-1")["TransformJobStatus"]

    # When it is stopped
    sagemaker.stop_transform_job(TransformJobName="job-1")
    job = wait_for_end(sagemaker)

    # Then it was in progress until then, and ends Stopped with no output
    assert running == "InProgress"
    assert job["TransformJobStatus"] == "Stopped"
    assert output_keys(s3) == []


def test_the_model_folder_comes_from_the_model_environment(moto_sagemaker: Any, minilm: Embedder) -> None:
    # Given a model whose container environment names a local ONNX folder
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/a.jsonl", [{"text": "what is amber"}])
    env = {"OSBATCH_LOCAL_MODEL_DIR": "/models/other"}
    sagemaker.create_model(
        ModelName="other", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x", "Environment": env}
    )
    asked: list[str | None] = []

    def loader(folder: str | None) -> Embedder:
        asked.append(folder)
        return minilm

    local.emulators.install(embedder_loader=loader)

    # When a job uses that model
    start_job(sagemaker, ModelName="other")

    # Then the worker loads that folder
    assert wait_for_end(sagemaker)["TransformJobStatus"] == "Completed"
    assert asked == ["/models/other"]


def test_a_model_folder_that_cannot_load_fails_the_job(moto_sagemaker: Any, tmp_path: Path) -> None:
    # Given a model pointing at a folder with no ONNX graph, and the real loader
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/a.jsonl", [{"text": "what is amber"}])
    env = {"OSBATCH_LOCAL_MODEL_DIR": str(tmp_path)}
    sagemaker.create_model(
        ModelName="broken", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x", "Environment": env}
    )

    # When a job uses it
    start_job(sagemaker, ModelName="broken")
    job = wait_for_end(sagemaker)

    # Then the job fails and says which folder
    assert job["TransformJobStatus"] == "Failed"
    assert f"OSBATCH_LOCAL_MODEL_DIR={tmp_path}" in job["FailureReason"]


def test_a_model_never_created_is_a_validation_error(moto_sagemaker: Any) -> None:
    # Given / When a job names a model that CreateModel never made
    _, sagemaker = moto_sagemaker
    with pytest.raises(ClientError) as raised:
        start_job(sagemaker, ModelName="missing")

    # Then SageMaker's error comes back and no job exists
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert (
        error["Message"] == 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/missing".'
    )
    assert sagemaker.list_transform_jobs()["TransformJobSummaries"] == []


def test_a_name_already_used_is_resource_in_use(moto_sagemaker: Any) -> None:
    # Given a job that exists
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/a.jsonl", [{"text": "what is amber"}])
    start_job(sagemaker)

    # When another job is created with the same name
    with pytest.raises(ClientError) as raised:
        start_job(sagemaker)

    # Then it is refused as ResourceInUse and the first job runs on
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    assert "must be unique" in raised.value.response["Error"]["Message"]
    assert wait_for_end(sagemaker)["TransformJobStatus"] == "Completed"


def test_stop_of_unknown_or_finished_jobs_is_an_error(moto_sagemaker: Any) -> None:
    # Given a job that completed
    s3, sagemaker = moto_sagemaker
    put_lines(s3, "in/a.jsonl", [{"text": "what is amber"}])
    start_job(sagemaker)
    wait_for_end(sagemaker)

    # When stops are asked for it and for a job that never existed
    with pytest.raises(ClientError) as finished:
        sagemaker.stop_transform_job(TransformJobName="job-1")
    with pytest.raises(ClientError) as unknown:
        sagemaker.stop_transform_job(TransformJobName="nope")

    # Then a finished job names its status, and an unknown one is ResourceNotFound
    assert finished.value.response["Error"]["Code"] == "ValidationException"
    assert "status Completed" in finished.value.response["Error"]["Message"]
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFound"


def test_input_the_emulator_cannot_run_is_refused_at_creation(moto_sagemaker: Any) -> None:
    # Given / When a job asks for whole-object records (SplitType None), which JSON Lines cannot be
    _, sagemaker = moto_sagemaker
    source = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/in/"}}
    with pytest.raises(ClientError) as raised:
        start_job(sagemaker, TransformInput={"DataSource": source, "SplitType": "None"})

    # Then creation fails with a ValidationException that says what is unsupported
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "SplitType None" in raised.value.response["Error"]["Message"]


def test_uninstall_gives_plain_moto_back() -> None:
    # Given the emulator installed and then removed
    local.emulators.install()
    local.emulators.uninstall()

    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)

        # When a job names a model that does not exist (moto alone does not check)
        start_job(sagemaker, ModelName="never-created")

        # Then moto's own instant Completed job is back, and StopTransformJob is unknown again
        assert sagemaker.describe_transform_job(TransformJobName="job-1")["TransformJobStatus"] == "Completed"
        with pytest.raises(NotImplementedError):  # how in-process moto answers an action it lacks
            sagemaker.stop_transform_job(TransformJobName="job-1")
