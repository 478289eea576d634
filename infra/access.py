"""Each function's data-plane permissions, one block per row of docs/architecture.md's function table.

The actions are the calls the handlers make (lambdas/osbatch/steps, dal/jobs.py, ingest/), held to the key
prefixes docs/architecture.md gives. SageMaker and OpenSearch grants live with those concerns
(inference.py, search.py); the SQS event source grants submit its queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack

from infra.batch_ingest import source_bucket
from infra.functions import Functions
from infra.nag import allow
from infra.storage import Storage
from osbatch.infra_facts import (
    DEAD_LETTER_PREFIX,
    JOBS_PREFIX,
    PipelineConfig,
    batch_files_prefix,
    batch_request_key,
    job_input_prefix,
    job_joined_prefix,
    job_output_prefix,
    job_parts_key,
    job_source_prefix,
    plan_key,
    report_key,
)

# JobTable: create() is a conditional put, update() an update, put_chunk() a plain put (a retried chunk
# overwrites its counts), chunk_totals() a query on the job's partition (finalize, fail-job),
# acquire_slot() / release_slot() a conditional update of the pipeline's slots item.
GET, PUT, UPDATE, QUERY = "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"
# upload_fileobj goes multipart for large bodies and aborts the upload if it fails.
WRITE = ["s3:PutObject", "s3:AbortMultipartUpload"]
# A dead-letter file is rewritten (or deleted when a retry has none) so it always matches the recorded counts.
REWRITE = [*WRITE, "s3:DeleteObject"]
RUNTIME_IDS = "Keys contain the job id, which is generated at run time; the grant is held to one key prefix."
INPUT_KEYS = "Objects under each pipeline's source prefix; their keys are chosen by whoever uploads them."


def grant_function_access(
    functions: Functions, storage: Storage, pipelines: Sequence[PipelineConfig], state_machine_arn: str
) -> None:
    out, dead = storage.output_bucket, storage.dead_letter_bucket
    table = [storage.job_table.table_arn]
    prefixes = list(dict.fromkeys(p.source.prefix for p in pipelines))
    inputs = [storage.input_bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]
    job_inputs = [out.arn_for_objects(f"{job_input_prefix('*')}*")]
    job_outputs = [out.arn_for_objects(f"{job_output_prefix('*')}*")]
    plans = [out.arn_for_objects(plan_key("*", "*"))]
    parts = [out.arn_for_objects(job_parts_key("*"))]
    reports = [out.arn_for_objects(report_key("*"))]
    dead_letters = [dead.arn_for_objects(f"{DEAD_LETTER_PREFIX}*")]
    bus = [Stack.of(storage).format_arn(service="events", resource="event-bus", resource_name="default")]

    def grant(name: str, actions: list[str], resources: list[str], reason: str = RUNTIME_IDS) -> None:
        allow(functions.role(name), actions, resources, reason=reason)

    def list_under(name: str, bucket_arn: str, key_prefixes: list[str]) -> None:
        allow(
            functions.role(name),
            ["s3:ListBucket"],
            [bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in key_prefixes]}},
        )

    # HeadObject on a missing key answers 404 (which submit ignores) only with ListBucket; else 403.
    grant("submit", ["s3:GetObject"], inputs, INPUT_KEYS)
    list_under("submit", storage.input_bucket.bucket_arn, prefixes)
    grant("submit", [GET, PUT, UPDATE], table)
    grant("submit", ["states:StartExecution"], [state_machine_arn])

    grant("prepare", ["s3:GetObject"], inputs, INPUT_KEYS)
    grant("prepare", WRITE, [*job_inputs, *parts])
    # Rebalancing the last remote job (steps/support/parts.py) reads parts back, copies some and deletes the
    # old.
    grant("prepare", ["s3:GetObject", "s3:DeleteObject"], job_inputs)
    grant("prepare", REWRITE, dead_letters)
    grant("prepare", [UPDATE], table)

    grant("start-job", [GET, UPDATE], table)  # UpdateItem: the job, and its slot (a conditional write)

    # GetItem: the slots item, read before the conditional write that gives the slot back, and the oldest
    # waiting jobs to wake (steps/support/slot_wake.py, as Finalize and FailJob do); UpdateItem: the job,
    # the slot, and the woken job's wake-up.
    grant("poll-job", [GET, UPDATE], table)

    # steps/park_job.py and steps/wake_job.py on the job item (dal/wakeups.py): park stores its token and
    # claims; wake checks the job exists, records the finish and claims. SendTaskSuccess is granted with the
    # rules (infra/wake.py).
    grant("park-job", [UPDATE], table)
    grant("wake-job", [GET, UPDATE], table)

    list_under("plan-ingest", out.bucket_arn, [JOBS_PREFIX])
    grant("plan-ingest", ["s3:PutObject"], plans)
    grant("plan-ingest", [GET, UPDATE], table)  # GetItem: is a bulk load into the index under way

    grant("ingest-chunk", ["s3:GetObject"], job_outputs)
    grant("ingest-chunk", REWRITE, dead_letters)
    # GetItem: the checkpoint an earlier attempt left; UpdateItem: the domain's shared writer slots
    grant("ingest-chunk", [GET, PUT, UPDATE], table)

    grant("finalize", ["s3:PutObject"], reports)
    # Remote jobs that failed while others completed are dead-lettered at file level
    # (steps/support/failed_parts.py); the chunks the Map tolerated failing, from their checkpoints
    # (steps/support/unreported.py: read the plans and the model output, read checkpoints and write the
    # chunks' counts); and the records a part's output lacks, by diffing it with the part
    # (steps/support/dropped.py). A dead-letter object with nothing is deleted.
    grant("finalize", ["s3:GetObject"], [*plans, *job_outputs, *job_inputs, *parts])
    grant("finalize", REWRITE, dead_letters)
    grant("finalize", [GET, PUT, QUERY, UPDATE], table)
    grant("finalize", ["events:PutEvents"], bus)

    grant("fail-job", ["s3:PutObject"], reports)
    # A job throttled past its retry window has its input dead-lettered at file level.
    grant("fail-job", WRITE, dead_letters)
    grant("fail-job", [QUERY, UPDATE], table)  # sums what the chunks indexed before the failure
    # The records of chunks that never reported become dead letters (steps/support/unreported.py): read the
    # plan and the model output, read checkpoints and write the chunks' counts.
    # The parts whose output was ingested and came up short are diffed, as in Finalize.
    grant("fail-job", ["s3:GetObject"], [*plans, *job_outputs, *job_inputs, *parts])
    grant("fail-job", REWRITE, dead_letters)
    grant("fail-job", [GET, PUT], table)
    grant("fail-job", ["events:PutEvents"], bus)


def grant_join_access(functions: Functions, storage: Storage) -> None:
    """For backends whose output lacks the source record (Bedrock, OpenAI; steps/support/join.py): prepare
    keeps the records, plan-ingest joins the output onto them, ingest-chunk reads the joined output."""
    out = storage.output_bucket
    sources = [out.arn_for_objects(f"{job_source_prefix('*')}*")]
    joined = [out.arn_for_objects(f"{job_joined_prefix('*')}*")]
    job_outputs = [out.arn_for_objects(f"{job_output_prefix('*')}*")]
    allow(functions.role("prepare"), [*WRITE, "s3:GetObject"], sources, reason=RUNTIME_IDS)
    allow(functions.role("plan-ingest"), ["s3:GetObject"], [*sources, *job_outputs], reason=RUNTIME_IDS)
    allow(functions.role("plan-ingest"), WRITE, joined, reason=RUNTIME_IDS)
    # Records the output lacks become dead letters (a retried plan rewrites or clears its object).
    dead_letters = [storage.dead_letter_bucket.arn_for_objects(f"{DEAD_LETTER_PREFIX}*")]
    allow(functions.role("plan-ingest"), REWRITE, dead_letters, reason=RUNTIME_IDS)
    allow(functions.role("ingest-chunk"), ["s3:GetObject"], joined, reason=RUNTIME_IDS)


def grant_batch_ingest_access(functions: Functions, storage: Storage, source_buckets: Sequence[str]) -> None:
    """`osbatch batch-ingest --stack` (osbatch.batch_ingestion.job): plan-ingest reads the staged request,
    ingest-chunk reads it and the request's files, finalize and fail-job read the files of chunks that never
    reported.
    S3 sources are read where they are, so only the buckets named in context `batch_ingest_buckets` are
    readable (each only while the stack's account, or the account named next to it, owns it), and only by
    those functions; local and OpenAI files are staged under jobs/<id>/."""
    out = storage.output_bucket
    requests = [out.arn_for_objects(batch_request_key("*"))]
    staged = [out.arn_for_objects(f"{batch_files_prefix('*')}*")]
    stack = Stack.of(storage)
    by_account: dict[str, list[str]] = {}
    for entry in source_buckets:
        bucket = source_bucket(entry)
        by_account.setdefault(bucket.account or stack.account, []).append(
            f"arn:{stack.partition}:s3:::{bucket.name}/*"
        )
    allow(functions.role("plan-ingest"), ["s3:GetObject"], requests, reason=RUNTIME_IDS)
    allow(functions.role("ingest-chunk"), ["s3:GetObject"], [*requests, *staged], reason=RUNTIME_IDS)
    # Finalize, for the chunks a tolerated Map failure left unreported, reads them as fail-job does.
    for settler in ("finalize", "fail-job"):
        allow(functions.role(settler), ["s3:GetObject"], staged, reason=RUNTIME_IDS)
    reason = "Objects of the buckets context batch_ingest_buckets names; a request chooses the keys."
    for account, sources in by_account.items():
        # Held to the bucket's owner: a same-named bucket of another account is never read.
        owner = {"StringEquals": {"s3:ResourceAccount": account}}
        for reader in ("ingest-chunk", "finalize", "fail-job"):
            allow(functions.role(reader), ["s3:GetObject"], sources, reason=reason, conditions=owner)
