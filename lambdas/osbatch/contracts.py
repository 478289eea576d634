"""Names shared by the Lambda code and the CDK app (docs/architecture.md), each defined once.

infra/ imports these to write lifecycle rules, IAM grants and retry rules, so a key the functions write
and the grant that allows it can never drift apart.
"""

from __future__ import annotations

import re

# Output bucket: per-job working data and job reports. Dead-letter bucket: records set aside.
JOBS_PREFIX = "jobs/"
REPORTS_PREFIX = "reports/"
DEAD_LETTER_PREFIX = "dead-letter/"
# Remote job names start with this, so IAM can hold the backend grants to osbatch's own jobs.
REMOTE_JOB_PREFIX = "osb-"
# SageMaker's TransformJobName pattern, which Bedrock's jobName also accepts (both at most 63 characters).
REMOTE_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# A plan's document versions are its time in seconds above LINE_BITS bits of input line: a later plan (a
# re-upload, a re-run) outranks every line of an earlier one, and 2^31 seconds of plans fit a signed 64-bit
# version. PlanIngest writes each chunk's version_base so; ingest adds the record's line (ingest/chunk.py).
LINE_BITS = 32
# The job table's sparse GSI on (pipeline, created_at): only job items carry `pipeline`.
JOBS_BY_PIPELINE_INDEX = "by-pipeline"


def job_prefix(job_id: str) -> str:
    """`jobs/<job_id>/`: prepared input, model output and the ingest plan of one job."""
    return f"{JOBS_PREFIX}{job_id}/"


def job_input_prefix(job_id: str) -> str:
    """Prepared model input (`part-NNNNN.jsonl`)."""
    return f"{job_prefix(job_id)}input/"


def job_source_prefix(job_id: str) -> str:
    """The valid source records of each input part (`part-NNNNN.jsonl`, same cut), for backends whose
    output does not carry the record (Bedrock, OpenAI): ingest joins the model output back onto them."""
    return f"{job_prefix(job_id)}source/"


def job_joined_prefix(job_id: str) -> str:
    """Model output joined onto its source records, one `part-NNNNN.jsonl.out` per output object."""
    return f"{job_prefix(job_id)}joined/"


def job_parts_key(job_id: str) -> str:
    """Prepare's list of the input parts: each part's remote job, key and record count
    (steps/support/parts.py)."""
    return f"{job_prefix(job_id)}parts.json"


def job_output_prefix(job_id: str) -> str:
    """Where the backend writes the model output."""
    return f"{job_prefix(job_id)}output/"


def batch_request_key(job_id: str) -> str:
    """A `_batch_ingestion` request run by the stack (batch_ingestion/job.py): the body and its files."""
    return f"{job_prefix(job_id)}batch-request.json"


def batch_files_prefix(job_id: str) -> str:
    """Where `osbatch batch-ingest --stack` stages a request's local and OpenAI files (`NNNNN.jsonl`)."""
    return f"{job_prefix(job_id)}batch-files/"


def job_group(index: int) -> str:
    """`job-NNNNN/`: the folder of one remote job's parts under the job's input and output prefixes."""
    return f"job-{index:05d}/"


def plan_key(job_id: str, plan: str) -> str:
    """One ingest plan of a job (`plan_name(n)`: each finished remote job's outputs are planned in turn);
    `plan_key("*", "*")` is the grant pattern."""
    return f"{job_prefix(job_id)}plans/{plan}.json"


def plan_name(number: int) -> str:
    return f"{number:05d}"


def remote_job_name(job_id: str, index: int) -> str:
    """The name of a job's remote job `index`: valid for SageMaker and Bedrock (<= 63 characters) and
    derived from the job id and the index only, so a re-run of StartJob finds the jobs it created."""
    cleaned = re.sub(r"[^a-zA-Z0-9-]", "-", f"{job_id}-{index:03d}").strip("-")
    name = f"{REMOTE_JOB_PREFIX}{cleaned}"
    if len(name) > 63:
        # Keep the tail: the job id's hash and the index are what make the name unique.
        name = f"{REMOTE_JOB_PREFIX}{cleaned[-(63 - len(REMOTE_JOB_PREFIX)) :]}".replace("--", "-")
    if not REMOTE_JOB_NAME.match(name):
        raise ValueError(f"cannot derive a valid remote job name from job id '{job_id}'")
    return name


def job_stale_ids_key(job_id: str) -> str:
    """The ids an earlier version of the job's source object wrote that the new version lacks, one JSON
    string a line (osbatch.incremental.sync), which a `source.sync: mirror` Finalize deletes. Under the input
    prefix, whose grants Prepare (write) and Finalize (read) already hold, and outside every remote job's
    folder (job_group), so no backend reads it as model input."""
    return f"{job_input_prefix(job_id)}stale-ids.jsonl"


def report_key(job_id: str) -> str:
    return f"{REPORTS_PREFIX}{job_id}.json"


def dead_letter_prefix(job_id: str) -> str:
    return f"{DEAD_LETTER_PREFIX}{job_id}/"


# The folders under dead_letter_prefix(job_id) (dead_letter_key's `stage`): Prepare's bad lines, the ingest
# chunks' records, records that never got a model output, and what a replay could not index again.
PREPARE_DEAD_LETTERS = "parse/"
INGEST_DEAD_LETTERS = "ingest/"
INFERENCE_DEAD_LETTERS = "inference/"
INDEX_DEAD_LETTERS = "index/"  # a failed job's file-level letter, once its model had finished
REPLAY_DEAD_LETTERS = "replay/"


def remote_job_dead_letter_key(job_id: str, index: int) -> str:
    """`dead-letter/<job_id>/inference/job-NNNNN.jsonl`: the file-level letter of remote job `index`,
    apart from the per-output letters PlanIngest writes under the same stage."""
    return f"{dead_letter_prefix(job_id)}{INFERENCE_DEAD_LETTERS}{job_group(index).rstrip('/')}.jsonl"


def dropped_records_dead_letter_key(job_id: str, part_file: str) -> str:
    """`dead-letter/<job_id>/inference/part-NNNNN.jsonl`: records input part `part_file` sent to the model
    that its output lacks, found by Finalize's diff (steps/support/dropped.py)."""
    return f"{dead_letter_prefix(job_id)}{INFERENCE_DEAD_LETTERS}{part_file}"


def dead_letter_key(job_id: str, folder: str, part: int, segment: int = 0) -> str:
    """`dead-letter/<job_id>/<folder><part>.jsonl` (folder: one of the *_DEAD_LETTERS above); for ingest,
    part is the chunk, and a chunk's later checkpoint segments are `<part>.<segment>.jsonl`."""
    suffix = f".{segment:04d}" if segment else ""
    return f"{dead_letter_prefix(job_id)}{folder}{part:05d}{suffix}.jsonl"


# Fields osbatch keeps in each document it writes (osbatch.incremental): the fingerprint of the embedded
# input (text, chunking, model and its parameters) and its config's part, the S3 object it came from, and
# the job that last wrote it.
# Prepare reads the fingerprints back with _mget to skip records whose embedded input did not change.
FINGERPRINT_FIELD = "osbatch_fingerprint"
CONFIG_FIELD = "osbatch_config"  # the config's part of the fingerprint: `osbatch plan --index` counts others
SOURCE_FIELD = "osbatch_source"
JOB_FIELD = "osbatch_job"  # the job that last embedded it (an unchanged record's update leaves it)
ID_FIELD = "osbatch_id"  # the document's id as a keyword with doc values: Prepare pages a source's ids by it
DOC_FIELDS = (FINGERPRINT_FIELD, CONFIG_FIELD, SOURCE_FIELD, JOB_FIELD, ID_FIELD)  # search hides them
# Under the record's bookkeeping key (record_paths.BOOKKEEPING_KEY): the fields above, which ingest copies
# into the document, so the model's output carries them from Prepare to the index.
DOC_FIELDS_KEY = "doc"


# Step Functions' own event when an execution's status changes, on the default bus. The statuses after
# which the job workflow may have ended without FailJob (steps/execution_ended.py). AWS Step Functions
# Developer Guide, "Automating Step Functions event delivery with EventBridge"
# (https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html).
EXECUTION_STATUS_SOURCE = "aws.states"
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
EXECUTION_ENDED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
