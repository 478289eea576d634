"""Everything the CDK app (infra/) takes from the Lambda package, named in one place.

infra/ imports from this module only (an import-linter contract in pyproject.toml holds it to that), so
what the stack's synthesis depends on is visible here: constants the functions and the stack must agree
on (object keys, names, REST paths, error names), pure functions of the pipeline config, and the config
schema itself, which is the input the stack is synthesized from. Nothing here does I/O or holds state;
each name stays defined where it belongs and is re-exported.
"""

from osbatch.backends.base import SLOT_WAIT_ERRORS, THROTTLED_ERRORS
from osbatch.backends.ml_commons import LEDGER_NAME
from osbatch.backends.remote_events import STATE_CHANGE_EVENTS, StateChangeEvent
from osbatch.config import (
    DEPLOYED_PIPELINES_FILE,
    ECR_IMAGE,
    MINILM_TOKENIZER_FILE,
    S3_URL,
    Backend,
    ConfigError,
    OpenSearchTarget,
    PipelineConfig,
    PollingConfig,
    load_pipeline,
    needs_minilm_tokenizer,
    next_wait_seconds,
    pipelines_to_json,
)
from osbatch.contracts import (
    DEAD_LETTER_PREFIX,
    EXECUTION_ENDED_STATUSES,
    EXECUTION_STATUS_CHANGE,
    EXECUTION_STATUS_SOURCE,
    JOBS_BY_PIPELINE_INDEX,
    JOBS_PREFIX,
    REMOTE_JOB_PREFIX,
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
from osbatch.dal.domain_writers import NO_WRITER_SLOT_ERRORS
from osbatch.search.client import DOMAIN_HOST
from osbatch.search.custom_resource import RESOURCE_TYPE, SearchResourceProperties
from osbatch.search.ml import CONNECTORS, MODELS, SEARCH_PIPELINE, TASKS
from osbatch.search.provision import hybrid_pipeline_name
from osbatch.steps.park_job import PARK_FOR_SLOT

__all__ = [
    "CONNECTORS",
    "DEAD_LETTER_PREFIX",
    "DEPLOYED_PIPELINES_FILE",
    "DOMAIN_HOST",
    "ECR_IMAGE",
    "EXECUTION_ENDED_STATUSES",
    "EXECUTION_STATUS_CHANGE",
    "EXECUTION_STATUS_SOURCE",
    "JOBS_BY_PIPELINE_INDEX",
    "JOBS_PREFIX",
    "LEDGER_NAME",
    "MINILM_TOKENIZER_FILE",
    "MODELS",
    "NO_WRITER_SLOT_ERRORS",
    "PARK_FOR_SLOT",
    "REMOTE_JOB_PREFIX",
    "RESOURCE_TYPE",
    "S3_URL",
    "SEARCH_PIPELINE",
    "SLOT_WAIT_ERRORS",
    "STATE_CHANGE_EVENTS",
    "TASKS",
    "THROTTLED_ERRORS",
    "Backend",
    "ConfigError",
    "OpenSearchTarget",
    "PipelineConfig",
    "PollingConfig",
    "SearchResourceProperties",
    "StateChangeEvent",
    "batch_files_prefix",
    "batch_request_key",
    "hybrid_pipeline_name",
    "job_input_prefix",
    "job_joined_prefix",
    "job_output_prefix",
    "job_parts_key",
    "job_source_prefix",
    "load_pipeline",
    "needs_minilm_tokenizer",
    "next_wait_seconds",
    "pipelines_to_json",
    "plan_key",
    "report_key",
]
