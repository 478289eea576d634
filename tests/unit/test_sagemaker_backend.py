from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from osbatch.backends.base import BackendThrottled, BackendUnavailable
from osbatch.backends.sagemaker import SageMakerBackend
from osbatch.config import PipelineConfig
from osbatch.contracts import remote_job_name
from osbatch.models import JobStateName, RemoteJob

ARN = "arn:aws:sagemaker:us-east-1:123456789012:transform-job/osb-msmarco-0123456789abcdef"
REMOTE = RemoteJob(id="osb-msmarco-0123456789abcdef", arn=ARN, output_uri="s3://osb-out/jobs/j/output/")


@pytest.fixture
def sagemaker() -> Any:
    return boto3.client("sagemaker", region_name="us-east-1")


def backend(config: PipelineConfig, sagemaker: Any, s3: Any = None) -> SageMakerBackend:
    assert config.inference.sagemaker is not None
    return SageMakerBackend(config.inference.sagemaker, sagemaker, s3, {"osbatch:pipeline": "msmarco"})


def test_job_names_are_valid_bounded_and_derived_from_the_job_and_index() -> None:
    # Given job ids of ordinary and extreme length
    short, long = "msmarco-0123456789abcdef", "p" * 60 + "-0123456789abcdef"
    # When names are derived for remote jobs 0 and 7, twice
    names = [remote_job_name(job, index) for job in (short, long) for index in (0, 7)]
    again = [remote_job_name(job, index) for job in (short, long) for index in (0, 7)]
    # Then they follow SageMaker's rule, keep the unique hash tail and the index, and never change
    assert names[0] == "osb-msmarco-0123456789abcdef-000"
    assert all(len(name) <= 63 and name.startswith("osb-") for name in names)
    assert names[3].endswith("0123456789abcdef-007") and len(set(names)) == 4
    assert names == again


def test_submit_builds_the_transform_job_from_config(config: PipelineConfig, sagemaker: Any) -> None:
    # Given SageMaker accepts the job
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "create_transform_job",
            {"TransformJobArn": ARN},
            {
                "TransformJobName": "osb-msmarco-0123456789abcdef",
                "ModelName": "minilm-embedder",
                "DataProcessing": {"InputFilter": "$.text", "JoinSource": "Input", "OutputFilter": "$"},
                "TransformInput": {
                    "ContentType": "application/json",
                    "SplitType": "Line",
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://out/jobs/j/input/"}
                    },
                },
                "TransformOutput": {
                    "AssembleWith": "Line",
                    "Accept": "application/json",
                    "S3OutputPath": "s3://osb-out/jobs/j/output/",
                },
                "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
                "MaxConcurrentTransforms": 4,
                "MaxPayloadInMB": 6,
                "BatchStrategy": "MultiRecord",
                "Tags": [{"Key": "osbatch:pipeline", "Value": "msmarco"}],
            },
        )
        # When the job is submitted
        remote = backend(config, sagemaker).submit(
            "osb-msmarco-0123456789abcdef", "s3://out/jobs/j/input/", "s3://osb-out/jobs/j/output/"
        )
    # Then the remote job is known by name and ARN
    assert remote == REMOTE


def test_resubmitting_finds_the_job_created_before(config: PipelineConfig, sagemaker: Any) -> None:
    # Given the job already exists (a retried StartJob)
    with Stubber(sagemaker) as stub:
        stub.add_client_error(
            "create_transform_job",
            "ResourceInUse",
            "Job name must be unique within an AWS account and region, "
            "and a job with this name already exists",
        )
        stub.add_response(
            "describe_transform_job",
            _description("InProgress"),
            {"TransformJobName": "osb-msmarco-0123456789abcdef"},
        )
        # When it is submitted again
        remote = backend(config, sagemaker).submit(
            "osb-msmarco-0123456789abcdef", "s3://out/i/", "s3://osb-out/jobs/j/output/"
        )
    # Then the existing job is returned instead of an error
    assert remote.arn == ARN


def test_throttling_is_raised_as_backend_throttled(config: PipelineConfig, sagemaker: Any) -> None:
    # Given SageMaker is at its instance quota
    with Stubber(sagemaker) as stub:
        stub.add_client_error(
            "create_transform_job", "ResourceLimitExceeded", "quota of ml.m5.xlarge reached"
        )
        # When / Then the error is the one the workflow retries for retry_time_window
        with pytest.raises(BackendThrottled, match="ResourceLimitExceeded: quota"):
            backend(config, sagemaker).submit("osb-msmarco-0123456789abcdef", "s3://out/i/", "s3://out/o/")


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("InProgress", JobStateName.RUNNING),
        ("Completed", JobStateName.COMPLETED),
        ("Failed", JobStateName.FAILED),
        ("Stopping", JobStateName.CANCELLING),
        ("Stopped", JobStateName.CANCELLED),
    ],
)
def test_status_maps_every_transform_state(
    config: PipelineConfig, sagemaker: Any, raw: str, state: JobStateName
) -> None:
    # Given a job in a SageMaker state
    with Stubber(sagemaker) as stub:
        stub.add_response("describe_transform_job", _description(raw), {"TransformJobName": REMOTE.id})
        # When its status is read
        status = backend(config, sagemaker).status(REMOTE)
    # Then it maps to the normalized state
    assert status.state is state
    assert status.progress["remote_status"] == raw


def test_a_failed_job_keeps_sagemakers_reason(config: PipelineConfig, sagemaker: Any) -> None:
    # Given a failed job
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "describe_transform_job",
            _description("Failed", FailureReason="ClientError: model container crashed"),
            {"TransformJobName": REMOTE.id},
        )
        status = backend(config, sagemaker).status(REMOTE)
    # Then the reason is SageMaker's own
    assert (status.state, status.reason) == (JobStateName.FAILED, "ClientError: model container crashed")


def test_a_failed_status_call_is_unavailable_not_fatal(config: PipelineConfig, sagemaker: Any) -> None:
    # Given DescribeTransformJob is throttled
    with Stubber(sagemaker) as stub:
        stub.add_client_error("describe_transform_job", "ThrottlingException", "Rate exceeded")
        # When / Then the poller gets an error it counts rather than a crash
        with pytest.raises(BackendUnavailable, match="ThrottlingException"):
            backend(config, sagemaker).status(REMOTE)


def test_cancel_stops_the_job_and_tolerates_a_finished_one(config: PipelineConfig, sagemaker: Any) -> None:
    # Given one running and one already completed job
    with Stubber(sagemaker) as stub:
        stub.add_response("stop_transform_job", {}, {"TransformJobName": REMOTE.id})
        stub.add_client_error(
            "stop_transform_job", "ValidationException", "Transform job in status Completed cannot be stopped"
        )
        # When both are cancelled / Then neither raises
        backend(config, sagemaker).cancel(REMOTE)
        backend(config, sagemaker).cancel(REMOTE)
        stub.assert_no_pending_responses()


def test_outputs_are_the_out_objects_under_the_output_prefix(
    config: PipelineConfig, s3: Any, sagemaker: Any
) -> None:
    # Given two outputs and an unrelated object
    for key in (
        "jobs/j/output/part-00001.jsonl.out",
        "jobs/j/output/part-00000.jsonl.out",
        "jobs/j/output/x.txt",
    ):
        s3.put_object(Bucket="osb-out", Key=key, Body=b"{}\n")
    # When outputs are listed
    outputs = backend(config, sagemaker, s3).outputs(REMOTE)
    # Then only .out objects are returned, in order
    assert [output.key for output in outputs] == [
        "jobs/j/output/part-00000.jsonl.out",
        "jobs/j/output/part-00001.jsonl.out",
    ]


def _description(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "TransformJobName": REMOTE.id,
        "TransformJobArn": ARN,
        "TransformJobStatus": status,
        "ModelName": "minilm-embedder",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://out/i/"}}
        },
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        **extra,
    }
