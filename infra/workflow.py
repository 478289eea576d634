"""The job workflow, exactly as docs/architecture.md draws it (Step Functions Standard, JSONPath)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.functions import LOG_RETENTION
from infra.nag import acknowledge, allow, flatten
from osbatch.infra_facts import (
    NO_WRITER_SLOT_ERRORS,
    PARK_FOR_SLOT,
    SLOT_WAIT_ERRORS,
    THROTTLED_ERRORS,
    plan_key,
)


@dataclass(frozen=True)
class LambdaRetry:
    """A Retry rule for Lambda's own errors: exponential, capped, with full jitter so that the many tasks
    a throttling burst fails together do not all come back at the same moment."""

    errors: tuple[str, ...]
    interval_seconds: int
    max_delay_seconds: int
    attempts: int
    backoff_rate: float = 2.0

    def longest_wait_seconds(self) -> int:
        """The retries' delays added up before jitter; jitter only shortens them."""
        delays = (self.interval_seconds * self.backoff_rate**n for n in range(self.attempts))
        return round(sum(min(delay, self.max_delay_seconds) for delay in delays))


# Throttling outlasts a burst of concurrent Map children and of other workloads in the account: retry for
# up to half an hour (10 s doubling to 5 min). Service errors are rarer and briefer: up to about 9 minutes.
LAMBDA_THROTTLED = LambdaRetry(("Lambda.TooManyRequestsException",), 10, 300, 10)
LAMBDA_SERVICE_ERRORS = LambdaRetry(
    (
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.ClientExecutionTimeoutException",
    ),
    5,
    120,
    8,
)
LAMBDA_RETRIES = (LAMBDA_THROTTLED, LAMBDA_SERVICE_ERRORS)
# A Map child throttled by ingest-chunk's reserved concurrency waits for the uploads ingesting ahead of it:
# once slots go back at the end of inference, more uploads may ingest at once than the reservation holds, and
# on a slow domain their backlog outlasts half an hour (docs/scale-simulation.md). 40 attempts wait up to 3 h
# before jitter; a throttled invocation costs nothing but a state transition.
CHUNK_THROTTLED = LambdaRetry(LAMBDA_THROTTLED.errors, 10, 300, 40)
# An ingest chunk killed mid-way (its timeout, a crash) resumes from its checkpoint when retried.
KILLED_ATTEMPT = LambdaRetry(("Sandbox.Timedout", "Runtime.ExitError"), 5, 60, 3)
# A chunk that found every writer slot of its domain taken (dal/domain_writers.py) took nothing: come back
# later, 30 s doubling to 5 min, jittered so the chunks refused together spread out. 20 attempts wait up to
# 88 minutes before jitter, while each writer ahead of it holds a slot for at most one 15-minute chunk.
NO_WRITER_SLOT = LambdaRetry(NO_WRITER_SLOT_ERRORS, 30, 300, 20)
# The states a job passes through once per poll: what grows the execution history (infra/history.py).
POLL_LOOP = ("WaitForJob", "PollJob", "JobDone?", "PartFinished?")
# The states a job passes through once per remote job whose output it ingests (at most max_remote_jobs).
INGEST_LOOP = ("PlanIngest", "IngestChunks", "PartFinished?")
# Set by StartJob and grown by PollJob (steps/start_job.py and steps/poll_job.py): how long WaitForJob waits
# for an event.
WAIT_SECONDS_PATH = "$.poll.wait_seconds"
# Set by PlanIngest from the pipeline's sink.tolerated_chunk_failure_percentage.
TOLERATED_FAILURE_PATH = "$.plan.tolerated_failure_percentage"
THROTTLE_INTERVAL_SECONDS = 30
THROTTLE_BACKOFF = 2.0
THROTTLE_MAX_DELAY_SECONDS = 600
# WaitForSlot's timeout: the fallback retry of a job waiting for a slot, for a release whose wake was lost
# (steps/support/slot_wake.py); the cap of the retrier it replaced. A waiting job renews its ticket at each
# StartJob, well within dal/slots.py's WAITER_GONE_SECONDS.
SLOT_WAIT_FALLBACK_SECONDS = THROTTLE_MAX_DELAY_SECONDS
# The states a job passes through once per wait for a job slot (infra/history.py counts them).
SLOT_LOOP = ("WaitForSlot", "StartJob")
MAP_MAX_CONCURRENCY = 8  # bounds the bulk load one job puts on the cluster
WAITING = ("CREATED", "RUNNING", "CANCELLING")
DONE = ("COMPLETED", "PARTIALLY_COMPLETED")
FAILED = ("FAILED", "CANCELLED", "EXPIRED", "UNREACHABLE")
# The fields of an IngestChunk that come from each item of chunks.json (the job's fields come from the state).
CHUNK_FIELDS = ("chunk", "bucket", "key", "start", "end", "version_base", "file")
# A JobState with `batch` is a `_batch_ingestion` request (osbatch.batch_ingestion.job): no inference to run.
BATCH_PATH = "$.batch"


def throttle_attempts(window_seconds: int) -> int:
    """Fewest retries whose backoff delays (30s, 60s, ... capped at 10 min) add up to the retry window."""
    attempts, waited, delay = 0, 0.0, float(THROTTLE_INTERVAL_SECONDS)
    while waited < window_seconds:
        attempts += 1
        waited += min(delay, THROTTLE_MAX_DELAY_SECONDS)
        delay *= THROTTLE_BACKOFF
    return max(attempts, 1)


def state_machine_arn(scope: Construct, name: str) -> str:
    """The ARN from the name alone, so the submit function can know it without depending on the resource."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


class JobWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        functions: Mapping[str, lambda_.IFunction],
        output_bucket: s3.IBucket,
        retry_window_seconds: int,
        timeout: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self._functions = functions
        self._invoked: dict[str, lambda_.IFunction] = {}  # the functions a task invokes (not submit)

        fail_job = self._task("FailJob", "fail-job", catch=None)
        fail_job.next(sfn.Fail(self, "JobFailed", error="JobFailed", cause="The job failed; see its report."))

        finalize = self._task("Finalize", "finalize", catch=fail_job)
        start_job = self._task("StartJob", "start-job", catch=None)
        start_job.add_retry(
            errors=list(THROTTLED_ERRORS),
            interval=Duration.seconds(THROTTLE_INTERVAL_SECONDS),
            backoff_rate=THROTTLE_BACKOFF,
            max_delay=Duration.seconds(THROTTLE_MAX_DELAY_SECONDS),
            max_attempts=throttle_attempts(retry_window_seconds),
        )
        # Queueing for a job slot, on its own clock: waiting for other uploads of the pipeline must not use
        # up the throttling retries (steps/start_job.py enforces each pipeline's slot_wait_window). The job
        # parks until a release wakes it, at most SLOT_WAIT_FALLBACK_SECONDS; then StartJob tries again.
        start_job.add_catch(
            self._park_for_slot(start_job, fail_job),
            errors=list(SLOT_WAIT_ERRORS),
            result_path=sfn.JsonPath.DISCARD,
        )
        start_job.add_catch(fail_job, errors=[sfn.Errors.ALL], result_path="$.error")
        poll_job = self._task("PollJob", "poll-job", catch=fail_job)
        wait = self._park(poll_job, fail_job)
        plan_ingest = self._task("PlanIngest", "plan-ingest", catch=fail_job)
        ingest_chunks = self._ingest_chunks()
        ingest_chunks.add_catch(fail_job, errors=[sfn.Errors.ALL], result_path="$.error")

        state = "$.status.state"
        # After each poll, and after each ingest: any remote job finished with output not yet ingested is
        # ingested now, while the others run on; once all ended and every output is in, Finalize.
        part_finished = sfn.Choice(self, "PartFinished?")
        part_finished.when(
            sfn.Condition.number_greater_than("$.status.ready", 0), plan_ingest.next(ingest_chunks)
        ).when(_state_is(state, DONE), finalize).otherwise(wait)
        ingest_chunks.next(part_finished)
        job_done = (
            sfn.Choice(self, "JobDone?")
            .when(_state_is(state, WAITING + DONE), part_finished)
            .when(_state_is(state, FAILED), fail_job)
            # A state the contract does not know must not loop forever.
            .otherwise(fail_job)
        )
        has_records = (
            sfn.Choice(self, "HasRecords?")
            .when(
                sfn.Condition.number_greater_than("$.prepared.valid", 0),
                start_job.next(wait).next(poll_job).next(job_done),
            )
            .otherwise(finalize)
        )
        prepare = self._task("Prepare", "prepare", catch=fail_job)
        # One machine for jobs and batch requests, so both run the very same Map, retries and accounting.
        start = (
            sfn.Choice(self, "BatchIngest?")
            .when(sfn.Condition.is_present(BATCH_PATH), plan_ingest)
            .otherwise(prepare.next(has_records))
        )

        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION)
        # CDK's default role trusts any state machine of the account (stateMachine:*); this one trusts only
        # this machine and the Distributed Map's child workflows, which run as <machine>/<map run label>.
        machine_arn = state_machine_arn(self, name)
        role = iam.Role(
            self,
            "StateMachineRole",
            assumed_by=iam.ServicePrincipal(
                "states.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
                    "ArnLike": {"aws:SourceArn": [machine_arn, f"{machine_arn}/*"]},
                },
            ),
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            role=role,
            state_machine_type=sfn.StateMachineType.STANDARD,
            query_language=sfn.QueryLanguage.JSON_PATH,
            definition_body=sfn.DefinitionBody.from_chainable(start),
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ERROR, include_execution_data=False
            ),
        )
        # The Map reads the plan with the state machine's role; CDK grants nothing when the bucket is a path.
        allow(
            self.state_machine,
            ["s3:GetObject"],
            [output_bucket.arn_for_objects(plan_key("*", "*"))],
            reason="The ingest plan's key contains the job id, which is only known at run time.",
            ack_scope=self,
        )
        self._acknowledge_generated_grants()

    def definition(self) -> dict[str, Any]:
        """The rendered definition, references to other resources shown as "TOKEN"."""
        cfn = self.state_machine.node.default_child
        assert isinstance(cfn, sfn.CfnStateMachine)
        text = Stack.of(self).resolve(cfn.definition_string)
        parts = text["Fn::Join"][1] if isinstance(text, dict) else [text]
        return dict(json.loads("".join(part if isinstance(part, str) else "TOKEN" for part in parts)))

    def _task(
        self,
        state_id: str,
        function: str,
        *,
        catch: sfn.IChainable | None,
        retries: Sequence[LambdaRetry] = LAMBDA_RETRIES,
    ) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            state_id,
            lambda_function=self._invoked.setdefault(function, self._functions[function]),
            payload=sfn.TaskInput.from_json_path_at("$"),
            output_path="$.Payload",  # every step is JobState -> JobState
            retry_on_service_exceptions=False,  # replaced by the documented retry below
        )
        self._add_lambda_retries(task, retries)
        if catch is not None:
            task.add_catch(catch, errors=[sfn.Errors.ALL], result_path="$.error")
        return task

    def _park(self, poll_job: sfn.IChainable, fail_job: sfn.IChainable) -> tasks.LambdaInvoke:
        """WaitForJob: a Wait that an event can end early (steps/park_job.py and steps/wake_job.py). park-job
        stores the task token; wake-job sends it when the remote job's completion event arrives, and the
        timeout, the poll interval, is the polling fallback. The state passes through unchanged either way."""
        park = tasks.LambdaInvoke(
            self,
            "WaitForJob",
            lambda_function=self._invoked.setdefault("park-job", self._functions["park-job"]),
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {"job_id": sfn.JsonPath.string_at("$.job_id"), "token": sfn.JsonPath.task_token}
            ),
            task_timeout=sfn.Timeout.at(WAIT_SECONDS_PATH),
            result_path=sfn.JsonPath.DISCARD,
            retry_on_service_exceptions=False,
        )
        self._add_lambda_retries(park)
        # Catchers are tried in order: the timeout is the poll, anything else fails the job as elsewhere.
        park.add_catch(poll_job, errors=[sfn.Errors.TIMEOUT], result_path=sfn.JsonPath.DISCARD)
        park.add_catch(fail_job, errors=[sfn.Errors.ALL], result_path="$.error")
        return park

    def _park_for_slot(self, start_job: sfn.IChainable, fail_job: sfn.IChainable) -> tasks.LambdaInvoke:
        """WaitForSlot: a job refused a slot (JobSlotsFull) waits here until a release sends its token
        (steps/support/slot_wake.py) or the fallback timeout passes; either way StartJob tries again. The
        Catch that leads here discards the error, so the state passes through unchanged."""
        park = tasks.LambdaInvoke(
            self,
            "WaitForSlot",
            lambda_function=self._invoked.setdefault("park-job", self._functions["park-job"]),
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {
                    "job_id": sfn.JsonPath.string_at("$.job_id"),
                    "token": sfn.JsonPath.task_token,
                    "wait": PARK_FOR_SLOT,
                }
            ),
            task_timeout=sfn.Timeout.duration(Duration.seconds(SLOT_WAIT_FALLBACK_SECONDS)),
            result_path=sfn.JsonPath.DISCARD,
            retry_on_service_exceptions=False,
        )
        self._add_lambda_retries(park)
        park.add_catch(start_job, errors=[sfn.Errors.TIMEOUT], result_path=sfn.JsonPath.DISCARD)
        park.add_catch(fail_job, errors=[sfn.Errors.ALL], result_path="$.error")
        park.next(start_job)
        return park

    @staticmethod
    def _add_lambda_retries(task: tasks.LambdaInvoke, rules: Sequence[LambdaRetry] = LAMBDA_RETRIES) -> None:
        for rule in rules:
            task.add_retry(
                errors=list(rule.errors),
                interval=Duration.seconds(rule.interval_seconds),
                backoff_rate=rule.backoff_rate,
                max_delay=Duration.seconds(rule.max_delay_seconds),
                max_attempts=rule.attempts,
                jitter_strategy=sfn.JitterType.FULL,
            )

    def _ingest_chunks(self) -> sfn.DistributedMap:
        item = {field: sfn.JsonPath.string_at(f"$$.Map.Item.Value.{field}") for field in CHUNK_FIELDS}
        ingest_chunks = sfn.DistributedMap(
            self,
            "IngestChunks",
            item_reader=sfn.S3JsonItemReader(
                bucket_name_path=sfn.JsonPath.string_at("$.plan.bucket"),
                key=sfn.JsonPath.string_at("$.plan.key"),
            ),
            item_selector={
                "job_id": sfn.JsonPath.string_at("$.job_id"),
                "pipeline": sfn.JsonPath.string_at("$.pipeline"),
                # Dead letters cite the upload; passed here so no chunk has to read the job table for it.
                "source": sfn.JsonPath.object_at("$.source"),
                **item,
            },
            max_concurrency=MAP_MAX_CONCURRENCY,
            # 0 unless the pipeline says otherwise, so a failed chunk fails the job visibly; a tolerated
            # one leaves its chunk unreported, whose records Finalize dead-letters (PARTIALLY_COMPLETED).
            tolerated_failure_percentage_path=TOLERATED_FAILURE_PATH,
            # Counts live in the job table, so the Map's output never grows with the job.
            result_path=sfn.JsonPath.DISCARD,
        )
        # An attempt killed by its timeout (or a crash) left a checkpoint: the retry resumes from it, so
        # retrying loses and duplicates nothing (osbatch.ingest.chunk).
        retries = (CHUNK_THROTTLED, LAMBDA_SERVICE_ERRORS, KILLED_ATTEMPT, NO_WRITER_SLOT)
        chunk = self._task("IngestChunk", "ingest-chunk", catch=None, retries=retries)
        ingest_chunks.item_processor(chunk)
        return ingest_chunks

    def _acknowledge_generated_grants(self) -> None:
        stack = Stack.of(self)
        acknowledge(
            self,
            "AwsSolutions-SF1",
            "Logs ERROR only: ALL would log every state of every Distributed Map child for large jobs. "
            "Execution history, X-Ray and the functions' own logs cover the rest.",
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs delivery (logs:*LogDelivery, DescribeLogGroups, resource policies) and X-Ray "
            "actions that Step Functions needs support no resource-level permissions.",
        )
        for function in self._invoked.values():
            arn = flatten(stack.resolve(function.function_arn))
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::{arn}:*]",
                "CDK's LambdaInvoke also grants this function's versions and aliases (ARN:*), nothing else.",
            )
        # The Distributed Map's own grants on its child executions, rendered as CDK renders them.
        arn = self.state_machine.state_machine_arn
        machine = flatten(stack.resolve(stack.split_arn(arn, ArnFormat.COLON_RESOURCE_NAME).resource_name))
        prefix = "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
        for suffix in (":*", "/*:*"):
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::{prefix}{machine}{suffix}]",
                "Distributed Map child executions have generated names; access stays within this machine.",
            )


def _state_is(path: str, states: tuple[str, ...]) -> sfn.Condition:
    return sfn.Condition.or_(*(sfn.Condition.string_equals(path, state) for state in states))
