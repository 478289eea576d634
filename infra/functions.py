"""The Lambda functions: one factory, so every function gets the same runtime, logging, tracing and limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.code import code_asset
from infra.layer import dependencies_layer
from infra.nag import acknowledge, allow
from osbatch.infra_facts import Backend, PipelineConfig

ROOT = Path(__file__).resolve().parent.parent
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
METRICS_NAMESPACE = "osbatch"


@dataclass(frozen=True)
class FunctionSpec:
    handler: str
    timeout_seconds: int
    memory_mb: int
    description: str
    reserved_concurrency: int | None = None


# Handler strings are the contract in docs/architecture.md. Timeouts: SQS and Step Functions retry,
# so a function only needs time for one unit of work; prepare and ingest-chunk stream whole files or chunks.
# Reserved concurrency caps what a burst of jobs can take from the account (and guarantees it back):
# 105 in all, leaving an account with the default 1,000 plenty. ingest-chunk's 40 is five jobs' Distributed
# Maps at 8 chunks each, the least it reserves: the stack sizes it from the pipelines' max_jobs_in_flight
# (infra/concurrency.py); above that, invocations are throttled and retried (infra/workflow.py).
FUNCTIONS: dict[str, FunctionSpec] = {
    "submit": FunctionSpec(
        "osbatch.handlers.submit.handler", 30, 256, "S3 events -> job workflow executions", 10
    ),
    "prepare": FunctionSpec(
        "osbatch.handlers.prepare.handler", 900, 1024, "Convert and split a job's input", 10
    ),
    "start-job": FunctionSpec(
        "osbatch.handlers.start_job.handler", 60, 256, "Start the batch inference job", 5
    ),
    "park-job": FunctionSpec(
        "osbatch.handlers.park_job.handler", 30, 256, "Park WaitForJob until its job's completion event", 10
    ),
    "wake-job": FunctionSpec(
        "osbatch.handlers.wake_job.handler", 30, 256, "Remote job finished -> wake its parked workflow", 5
    ),
    "poll-job": FunctionSpec("osbatch.handlers.poll_job.handler", 60, 256, "Read the batch job's state", 10),
    "plan-ingest": FunctionSpec(
        "osbatch.handlers.plan_ingest.handler", 300, 512, "Cut outputs into chunks", 5
    ),
    "ingest-chunk": FunctionSpec(
        "osbatch.handlers.ingest_chunk.handler", 900, 1024, "Bulk-index one chunk", 40
    ),
    "finalize": FunctionSpec(
        "osbatch.handlers.finalize.handler", 300, 512, "Count, report and announce a job", 5
    ),
    "fail-job": FunctionSpec("osbatch.handlers.fail_job.handler", 60, 256, "Record why a job failed", 5),
}
# Context `reserved_concurrency: false` drops the reservations, for accounts whose concurrency quota is too
# small to reserve 90 and keep the 100 unreserved that Lambda requires (new accounts may start at 10).
RESERVED_CONCURRENCY_CONTEXT = "reserved_concurrency"


# The functions that talk to the cluster: prepare creates or checks the index before any inference is paid
# for, plan-ingest checks it again and relaxes a new index for the load, ingest-chunk writes, finalize and
# fail-job restore the index's settings after the load. Each gets the endpoint and SigV4 access to exactly
# what it calls on its pipelines' indices (infra/search.py).
INDEX_CHECKERS = ("prepare", "plan-ingest")
BULK_WRITERS = ("ingest-chunk",)
LOAD_SETTERS = ("plan-ingest", "finalize", "fail-job")  # search/bulk_load.py
# Incremental re-embedding (lambdas/osbatch/incremental): prepare reads fingerprints back (_mget), adds
# their fields to the mapping and updates unchanged documents (_bulk); finalize counts or deletes the
# documents of a source's earlier version (_count, _delete_by_query).
FINGERPRINT_READERS = ("prepare",)
SOURCE_SYNCERS = ("finalize",)
OPENSEARCH_CLIENTS = tuple(dict.fromkeys((*INDEX_CHECKERS, *BULK_WRITERS, *LOAD_SETTERS)))
# The steps the ml-commons backend runs on the cluster, when a pipeline uses it: submit, poll and cancel
# (infra/ml_commons.py).
BATCH_CALLERS = ("start-job", "poll-job", "fail-job")


class FunctionFactory(Construct):
    """Makes functions that share one code asset (with the pipeline configs), one dependency layer and
    one base environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipelines: Sequence[PipelineConfig],
        environment: Mapping[str, str],
        reserve_concurrency: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self._environment = dict(environment)
        self._reserve = reserve_concurrency
        self._code = code_asset(self, pipelines)
        self._layer = dependencies_layer(self, "Dependencies", ROOT / "requirements" / "lambda.lock")

    def create(
        self, name: str, spec: FunctionSpec, extra_env: Mapping[str, str] | None = None
    ) -> lambda_.Function:
        environment = {**self._environment, **(extra_env or {})}
        scope = Construct(self, name)
        log_group = logs.LogGroup(scope, "Logs", retention=LOG_RETENTION)
        # An explicit role with no managed policy: AWSLambdaBasicExecutionRole would allow every log group.
        role = iam.Role(scope, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        allow(role, ["logs:CreateLogStream", "logs:PutLogEvents"], [log_group.log_group_arn])
        function = lambda_.Function(
            scope,
            "Function",
            description=f"osbatch {name}: {spec.description}",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler=spec.handler,
            code=self._code,
            layers=[self._layer],
            role=role,
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            reserved_concurrent_executions=spec.reserved_concurrency if self._reserve else None,
            environment=environment,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions.",
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            "Pinned to python3.12 because the dependency layer holds cp312 wheels; upgrade both together.",
        )
        return function


class Functions(Construct):
    """All functions from docs/architecture.md, with the environment each one reads."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipelines: Sequence[PipelineConfig],
        base_environment: Mapping[str, str],
        state_machine_arn: str,
        opensearch_endpoint: str | None,
        event_bus_name: str,
        reserve_concurrency: bool = True,
        reserved: Mapping[str, int] | None = None,
    ) -> None:
        """reserved: each function's reserved concurrency where not its spec's (infra/concurrency.py)."""
        super().__init__(scope, construct_id)
        environment = {
            **base_environment,
            "POWERTOOLS_SERVICE_NAME": "osbatch",
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_LEVEL": "INFO",
        }
        search = {"OPENSEARCH_ENDPOINT": opensearch_endpoint} if opensearch_endpoint else {}
        bus = {"EVENT_BUS_NAME": event_bus_name}
        extra: dict[str, dict[str, str]] = {
            "submit": {"STATE_MACHINE_ARN": state_machine_arn},
            "finalize": dict(bus),
            "fail-job": dict(bus),
        }
        # Merged, not overwritten: finalize and fail-job need both the bus and the cluster.
        batch = any(p.inference.backend is Backend.ML_COMMONS for p in pipelines)
        for name in (*OPENSEARCH_CLIENTS, *(BATCH_CALLERS if batch else ())):
            extra[name] = {**extra.get(name, {}), **search}
        factory = FunctionFactory(
            self,
            "Factory",
            pipelines=pipelines,
            environment=environment,
            reserve_concurrency=reserve_concurrency,
        )
        self.factory = factory  # for functions other constructs own (search provisioning)
        self.by_name: dict[str, lambda_.Function] = {
            name: factory.create(name, _reserving(spec, (reserved or {}).get(name)), extra.get(name))
            for name, spec in FUNCTIONS.items()
        }

    def __getitem__(self, name: str) -> lambda_.Function:
        return self.by_name[name]

    def role(self, name: str) -> iam.IRole:
        role = self.by_name[name].role
        assert role is not None, "the factory always sets a role"
        return role

    def roles(self, *names: str) -> list[iam.IRole]:
        return [self.role(name) for name in names]


def _reserving(spec: FunctionSpec, reserved: int | None) -> FunctionSpec:
    return spec if reserved is None else replace(spec, reserved_concurrency=reserved)
