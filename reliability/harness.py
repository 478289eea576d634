"""The deployed stack on the local runtime, seen from outside: upload, wait for the jobs, read what they
left in the index and the dead-letter bucket, and account for every record (reliability/accounting.py)."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from local.aws import session
from local.deploy import deploy_local, load_pipelines
from local.runtime import AWS_URL, LocalRuntime
from osbatch.config import PipelineConfig
from osbatch.contracts import job_prefix, report_key
from osbatch.dal import JobTable
from osbatch.models import JobStateName, job_id_for
from osbatch.search.client import opensearch_client
from reliability.accounting import Tally, account, all_index_ids, indexed_docs, input_records
from reliability.burst import Started, deliver_again, object_created, started

T = TypeVar("T")

# The integration tests' pipelines, so `make reliability` and the integration suite deploy the same stack
# and switching between them never reshapes it; the scenarios use the e2e-reliability pipeline.
PIPELINES = str(Path(__file__).resolve().parent.parent / "tests" / "integration" / "pipelines" / "*.yaml")
PIPELINE = "e2e-reliability"
JOB_TIMEOUT_SECONDS = 900.0  # stops a hung run; nothing is judged by how long it took


@dataclass(frozen=True)
class Upload:
    name: str  # the key under the pipeline's prefix
    body: bytes


class Harness:
    def __init__(self, runtime: LocalRuntime, stack: Any = None) -> None:
        """stack: the deployed stack when the caller has one (the integration tests' fixture)."""
        self.runtime = runtime
        self.config: PipelineConfig = {c.name: c for c in load_pipelines(PIPELINES)}[PIPELINE]
        self.stack = stack or deploy_local(
            PIPELINES, opensearch_url=runtime.opensearch.url, progress=lambda _: None
        )
        self.s3 = session().client("s3", endpoint_url=AWS_URL)
        # A folder of this run's own: the same bytes under the same key are the same job (osbatch.models
        # job_id_for), which a second run on the same runtime would find already ended, over an emptied index.
        self.run = f"run-{uuid.uuid4().hex[:8]}"
        self.jobs = JobTable(
            session().resource("dynamodb", endpoint_url=AWS_URL).Table(self.stack.outputs["JobTableName"])
        )

    @property
    def client(self) -> Any:
        return opensearch_client(self.runtime.opensearch.url)

    @property
    def index(self) -> str:
        return self.config.sink.index

    def fresh_index(self) -> None:
        """Each scenario starts from an empty index (Prepare creates it from the mapping)."""
        self.client.indices.delete(index=self.index, ignore_unavailable=True)

    def upload(self, uploads: Sequence[Upload]) -> list[tuple[str, str]]:
        """Put every file at once; (job id, s3 uri) of each."""
        bucket = self.stack.outputs["InputBucketName"]
        started = []
        for item in uploads:
            key = f"{self.config.source.prefix}{self.run}/{item.name}"
            etag = self.s3.put_object(Bucket=bucket, Key=key, Body=item.body)["ETag"].strip('"')
            started.append((job_id_for(self.config.name, bucket, key, etag), f"s3://{bucket}/{key}"))
        return started

    def wait(self, job_ids: Sequence[str], timeout: float = JOB_TIMEOUT_SECONDS) -> dict[str, str]:
        """Each job's terminal state (a job whose item never appears or never ends is reported as such)."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline and len(states) < len(job_ids):
            for job_id in job_ids:
                job = self.jobs.get(job_id)
                if job and JobStateName(job["state"]).terminal:
                    states[job_id] = job["state"]
            time.sleep(0.5)
        return {job_id: states.get(job_id, "NOT ENDED") for job_id in job_ids}

    def dead_letters(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        bucket = self.stack.outputs["DeadLetterBucketName"]
        letters = []
        for job_id in job_ids:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"dead-letter/{job_id}/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    body = self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                    letters += [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        return letters

    def tally(
        self, uploads: Sequence[Upload], started: Sequence[tuple[str, str]], *, replayed: bool = False
    ) -> Tally:
        """Account for every record of these uploads from the index and the dead letters alone."""
        records = []
        for item, (_, uri) in zip(uploads, started, strict=True):
            records += input_records(uri, item.body)
        client = self.client
        client.indices.refresh(index=self.index)
        ids = [record.doc_id for record in records if record.doc_id is not None]
        docs = indexed_docs(client, self.index, ids)
        letters = self.dead_letters([job_id for job_id, _ in started])
        count = int(client.count(index=self.index)["count"])
        return account(records, docs, letters, all_index_ids(client, self.index), count, replayed=replayed)

    def wait_until(
        self, probe: Callable[[], bool], *, what: str, timeout: float = JOB_TIMEOUT_SECONDS
    ) -> None:
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not seen within {timeout:.0f} s")
            time.sleep(0.2)

    def wait_for(
        self, probe: Callable[[], T | None], *, what: str, timeout: float = JOB_TIMEOUT_SECONDS
    ) -> T:
        """What probe returns once it returns something."""
        deadline = time.monotonic() + timeout
        while (found := probe()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not seen within {timeout:.0f} s")
            time.sleep(0.2)
        return found

    @property
    def sagemaker(self) -> Any:
        return session().client("sagemaker", endpoint_url=AWS_URL)

    def started(self, job_ids: Sequence[str]) -> Started:
        """How many executions and transform jobs these jobs have (scenario g)."""
        sfn = session().client("stepfunctions", endpoint_url=AWS_URL)
        return started(sfn, self.stack.outputs["StateMachineArn"], self.sagemaker, job_ids)

    def deliver_again(self, uris: Sequence[str]) -> int:
        """Put each uploaded object's `Object Created` event on the default bus again, then wait until submit
        has taken every message off its queue; how many events EventBridge accepted."""
        entries = []
        for uri in uris:
            bucket, key = uri.removeprefix("s3://").split("/", 1)
            entries.append(object_created(self.s3, bucket, key))
        accepted = deliver_again(session().client("events", endpoint_url=AWS_URL), entries)
        sqs = session().client("sqs", endpoint_url=AWS_URL)
        names: list[Any] = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

        def drained() -> bool:
            counts = sqs.get_queue_attributes(
                QueueUrl=self.stack.outputs["SubmitQueueUrl"], AttributeNames=names
            )
            return all(value == "0" for value in counts["Attributes"].values())

        time.sleep(2.0)  # EventBridge delivers to the queue on a thread of its own
        self.wait_until(drained, what="an empty submit queue")
        return accepted

    def plan_written(self, job_id: str) -> bool:
        """PlanIngest has cut the job's first output into chunks: the Map is about to bulk."""
        listing = self.s3.list_objects_v2(
            Bucket=self.stack.outputs["OutputBucketName"], Prefix=f"{job_prefix(job_id)}plans/"
        )
        return bool(listing.get("Contents"))

    def start_ingest(self, upload: Upload) -> tuple[list[tuple[str, str]], str]:
        """Into a fresh index, one upload, waited on until PlanIngest wrote its first ingest plan (the Map
        is about to bulk): what `upload` returns, and the job's id."""
        self.fresh_index()
        started = self.upload([upload])
        ((job_id, _),) = started
        self.wait_until(lambda: self.plan_written(job_id), what="the first ingest plan")
        return started, job_id

    def replay(self, job_id: str) -> str:
        """`osbatch replay <job>`: re-ingest the job's ingest dead letters; what it did, as a note."""
        from cli.replay import replay_job

        with tempfile.TemporaryDirectory() as scratch:
            report = replay_job(
                job_id,
                job_id=job_id,
                config=self.config,
                s3=self.s3,
                bucket=self.stack.outputs["DeadLetterBucketName"],
                opensearch=self.client,
                resubmit_dir=Path(scratch),
                say=lambda _: None,
                jobs=self.jobs,
            )
        return (
            f"osbatch replay: read {report.read}, indexed {report.indexed}, "
            f"failed again {report.dead_lettered}"
        )

    def reports(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The jobs' reports (what osbatch says; the tally never reads them, the notes quote them)."""
        bucket = self.stack.outputs["OutputBucketName"]
        found = []
        for job_id in job_ids:
            body = self.s3.get_object(Bucket=bucket, Key=report_key(job_id))["Body"].read()
            found.append(json.loads(body))
        return found

    def write_rejections(self) -> int:
        """The node's own count of rejected write tasks since it started (`_nodes/stats/thread_pool`)."""
        stats = self.client.nodes.stats(metric="thread_pool")
        return sum(int(node["thread_pool"]["write"]["rejected"]) for node in stats["nodes"].values())
