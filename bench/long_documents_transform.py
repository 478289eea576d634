"""The throughput part of bench/long_documents.py: passages through the local Batch Transform emulator,
and the raw model on the same passages.

The emulator runs inside an in-process moto (local.emulators.install, as tests/local/unit/
test_transform_sagemaker.py runs it), on the embedder given, so both sides run the same model object.
Every vector the pipeline writes is checked against the raw model's (cosine >= MIN_COSINE): a fast
pipeline that loses or garbles vectors does not pass.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from osbatch.config import SageMakerJobConfig
from osbatch.models import JobStateName

BUCKET = "bench-long-documents"
MIN_COSINE = 0.999
# Each status call runs through boto3 and moto in this process, on the CPU being measured: seldom enough
# to cost next to nothing, often enough to add little to a job of many seconds.
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Run:
    passages: int
    wall_seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.passages / self.wall_seconds

    @property
    def per_cpu_second(self) -> float:
        return self.passages / self.cpu_seconds


def raw_model_run(embedder: Any, passages: list[str]) -> Run:
    wall, cpu = time.perf_counter(), time.process_time()
    embedder.embed(passages)
    return Run(len(passages), time.perf_counter() - wall, time.process_time() - cpu)


def transform_run(embedder: Any, passages: list[str], settings: SageMakerJobConfig) -> Run:
    """One transform job over the passages, one line each as Prepare writes a part (input_line), submitted
    by the SageMaker backend as StartJob submits it, until its status is terminal as PollJob sees it."""
    import boto3
    from moto import mock_aws

    import local.emulators
    from osbatch.backends.sagemaker import SageMakerBackend

    local.emulators.install(embedder_loader=lambda _folder: embedder)
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            sagemaker = boto3.client("sagemaker", region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            role = "arn:aws:iam::123456789012:role/bench"
            sagemaker.create_model(
                ModelName=settings.ModelName, ExecutionRoleArn=role, PrimaryContainer={"Image": "local"}
            )
            backend = SageMakerBackend(settings, sagemaker, s3, {"osbatch:pipeline": "bench"})
            records = ({"_id": f"p{n}", "text": text} for n, text in enumerate(passages))
            lines = (backend.input_line(record, n, record["text"]) for n, record in enumerate(records, 1))
            body = "".join(json.dumps(line) + "\n" for line in lines).encode()
            s3.put_object(Bucket=BUCKET, Key="in/part-00000.jsonl", Body=body)
            wall, cpu = time.perf_counter(), time.process_time()
            remote = backend.submit("osb-bench", f"s3://{BUCKET}/in/", f"s3://{BUCKET}/out/")
            while not (status := backend.status(remote)).state.terminal:
                time.sleep(POLL_SECONDS)
            run = Run(len(passages), time.perf_counter() - wall, time.process_time() - cpu)
            if status.state is not JobStateName.COMPLETED:
                raise RuntimeError(f"the transform job ended {status.state}: {status.reason}")
            (output,) = backend.outputs(remote)
            _check(s3, output.key, embedder, passages)
            return run
    finally:
        local.emulators.uninstall()


def _check(s3: Any, key: str, embedder: Any, passages: list[str]) -> None:
    output = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["text"] for line in lines] == passages, "the output does not hold every passage, in order"
    piped = np.asarray([line["SageMakerOutput"] for line in lines], dtype=np.float32)
    raw = embedder.embed(passages)
    cosines = np.sum(piped * raw, axis=1) / (np.linalg.norm(piped, axis=1) * np.linalg.norm(raw, axis=1))
    assert float(cosines.min()) >= MIN_COSINE, f"a pipeline vector differs from the model's: {cosines.min()}"
