"""The osbatch stack: composes one construct per concern and exports what the CLI needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Annotations, CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.access import grant_batch_ingest_access, grant_function_access, grant_join_access
from infra.bedrock import BedrockAccess, bedrock_models
from infra.concurrency import reservations
from infra.functions import (
    BULK_WRITERS,
    FINGERPRINT_READERS,
    INDEX_CHECKERS,
    LOAD_SETTERS,
    SOURCE_SYNCERS,
    Functions,
)
from infra.history import check_polling_fits
from infra.inference import SAGEMAKER_LOG_GROUP_CONTEXT, InferenceAccess
from infra.ml_commons import grant_ml_commons, uses_ml_commons
from infra.monitoring import Monitoring
from infra.notify import NO_TARGET_WARNING, AlarmTargets
from infra.openai import OPENAI_CALLERS, grant_openai_secrets
from infra.search import SearchAccess
from infra.search_provisioning import SearchProvisioning
from infra.search_security import INDEX_ROLE, ML_POLL_ROLE, ML_PROVISION_ROLE, ML_SUBMIT_ROLE
from infra.storage import Storage
from infra.sweep import ExecutionSweep
from infra.tags import tag_stack
from infra.trigger import Trigger
from infra.wake import WakeRules
from infra.workflow import (
    INGEST_LOOP,
    POLL_LOOP,
    SLOT_LOOP,
    SLOT_WAIT_FALLBACK_SECONDS,
    JobWorkflow,
    state_machine_arn,
)
from osbatch.infra_facts import Backend, PipelineConfig

# Backends whose output lacks the source record, so PlanIngest joins it back (steps/support/join.py).
JOINING_BACKENDS = frozenset({Backend.BEDROCK, Backend.OPENAI})

# Context the local runtime sets (local/deploy.py): the local node's URL.
LOCAL_OPENSEARCH_ENDPOINT = "local_opensearch_endpoint"
# Pollers time out on their own (polling.timeout_hours); the extra day covers Prepare and ingest of a big job.
INGEST_ALLOWANCE_HOURS = 24


class OsbatchStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipelines: Sequence[PipelineConfig],
        opensearch_endpoint: str | None = None,
        alarm_targets: AlarmTargets | None = None,
        resource_tags: Mapping[str, str] | None = None,
        reserve_concurrency: bool = True,
        batch_ingest_buckets: Sequence[str] = (),
        **kwargs: Any,
    ):
        """opensearch_endpoint: what the functions use instead of the pipelines' own (the local node).
        batch_ingest_buckets: buckets whose objects `osbatch batch-ingest --stack` requests may name."""
        super().__init__(scope, construct_id, **kwargs)
        if not pipelines:
            raise ValueError("a stack needs at least one pipeline")
        tag_stack(self, resource_tags or {})
        targets = alarm_targets or AlarmTargets()
        if targets.empty:
            Annotations.of(self).add_warning_v2("osbatch:no-alarm-target", NO_TARGET_WARNING)
        workflow_name = f"{self.stack_name}-jobs"
        machine_arn = state_machine_arn(self, workflow_name)

        storage = Storage(self, "Storage")
        inference = InferenceAccess(
            self,
            "Inference",
            output_bucket=storage.output_bucket,
            pipelines=pipelines,
            create_log_group=self.node.try_get_context(SAGEMAKER_LOG_GROUP_CONTEXT) != "existing",
        )
        search = SearchAccess(self, "Search", pipelines=pipelines)
        functions = Functions(
            self,
            "Functions",
            pipelines=pipelines,
            base_environment={
                "JOB_TABLE": storage.job_table.table_name,
                "OUTPUT_BUCKET": storage.output_bucket.bucket_name,
                "DEAD_LETTER_BUCKET": storage.dead_letter_bucket.bucket_name,
            },
            state_machine_arn=machine_arn,
            opensearch_endpoint=opensearch_endpoint or search.endpoint,
            event_bus_name="default",
            reserve_concurrency=reserve_concurrency,
            # Sized from the pipelines, and refused before anything is built if no default account could.
            reserved=reservations(pipelines) if reserve_concurrency else None,
        )
        grant_function_access(functions, storage, pipelines, machine_arn)
        grant_batch_ingest_access(functions, storage, batch_ingest_buckets)
        # CreateTransformJob with Tags also needs AddTags; a re-run StartJob describes the job it created.
        # No iam:PassRole: CreateTransformJob takes no role (the model, created by the user, names it).
        inference.grant_transform_jobs(
            functions["start-job"], "CreateTransformJob", "AddTags", "DescribeTransformJob"
        )
        inference.grant_transform_jobs(functions["poll-job"], "DescribeTransformJob", "StopTransformJob")
        # A job whose workflow failed is stopped rather than left running unobserved.
        inference.grant_transform_jobs(functions["fail-job"], "StopTransformJob")
        search.grant_index_access(
            functions.roles(*INDEX_CHECKERS),
            functions.roles(*BULK_WRITERS),
            functions.roles(*LOAD_SETTERS),
            incremental=functions.roles(*FINGERPRINT_READERS, *SOURCE_SYNCERS),
        )
        grant_ml_commons(functions, storage, search, pipelines)
        # Locally there is no provisioning custom resource: moto's CloudFormation cannot run the Provider
        # framework's Node.js functions, and the local Lambda sandboxes run Python only. The local demo runs
        # `osbatch setup` against the local node instead, the same provisioning code the resource runs.
        provisioning = None
        if not self.node.try_get_context(LOCAL_OPENSEARCH_ENDPOINT):
            provisioning = SearchProvisioning(
                self, "SearchProvisioning", pipelines=pipelines, factory=functions.factory, search=search
            )
        self._map_search_roles(search, functions, pipelines, provisioning)
        bedrock = self._bedrock(pipelines, storage, functions)

        trigger = Trigger(
            self,
            "Trigger",
            pipelines=pipelines,
            input_bucket=storage.input_bucket,
            submit=functions["submit"],
        )
        WakeRules(
            self,
            "Wake",
            wake=functions["wake-job"],
            # park-job and wake-job resume WaitForJob; park-job and the steps that give a job slot back resume
            # WaitForSlot (steps/support/slot_wake.py).
            token_senders=functions.roles("park-job", "wake-job", "poll-job", "finalize", "fail-job"),
            state_machine_arn=machine_arn,
        )
        # Executions that end without FailJob (timed out, stopped, failed past every Catch) fail their jobs.
        sweep = ExecutionSweep(
            self,
            "Sweep",
            fail_job=functions["fail-job"],
            state_machine_arn=machine_arn,
            machine_name=workflow_name,
        )
        slot_wait = max(p.inference.slot_wait_window_seconds for p in pipelines)
        workflow = JobWorkflow(
            self,
            "Workflow",
            name=workflow_name,
            functions=functions.by_name,
            output_bucket=storage.output_bucket,
            retry_window_seconds=max(p.inference.retry_time_window_seconds for p in pipelines),
            # A job may queue for a slot before its polling timeout starts.
            timeout=Duration.seconds(
                round(
                    (max(p.inference.polling.timeout_hours for p in pipelines) + INGEST_ALLOWANCE_HOURS)
                    * 3600
                )
                + slot_wait
            ),
        )
        # Before anything is deployed: a job must not be able to outgrow its execution history.
        check_polling_fits(
            pipelines,
            workflow.definition(),
            POLL_LOOP,
            INGEST_LOOP,
            slot_loop=SLOT_LOOP,
            slot_wait_seconds=SLOT_WAIT_FALLBACK_SECONDS,
        )
        monitoring = Monitoring(
            self,
            "Monitoring",
            dashboard_name=self.stack_name,
            functions=functions.by_name,
            queue=trigger.queue,
            dead_letter_queue=trigger.dead_letter_queue,
            unended_jobs_queue=sweep.dead_letter_queue,
            state_machine=workflow.state_machine,
            targets=targets,
            domain=search.domain,
        )

        outputs = {
            "InputBucketName": storage.input_bucket.bucket_name,
            "OutputBucketName": storage.output_bucket.bucket_name,
            "DeadLetterBucketName": storage.dead_letter_bucket.bucket_name,
            "JobTableName": storage.job_table.table_name,
            "StateMachineArn": workflow.state_machine.state_machine_arn,
            "SubmitQueueUrl": trigger.queue.queue_url,
            "SubmitDlqUrl": trigger.dead_letter_queue.queue_url,
            # `osbatch end-unended`: the jobs the safety net could not end, and the function that ends them.
            "SweepDlqUrl": sweep.dead_letter_queue.queue_url,
            "FailJobFunctionName": functions["fail-job"].function_name,
            "AlarmTopicArn": monitoring.topic.topic_arn,
            "SageMakerRoleArn": inference.role.role_arn,
            **({"BedrockJobRoleArn": bedrock.role.role_arn} if bedrock else {}),
            "DashboardName": monitoring.dashboard.dashboard_name,
        }
        endpoint = opensearch_endpoint or search.endpoint
        if endpoint:
            outputs["OpenSearchEndpoint"] = endpoint
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)

    @staticmethod
    def _map_search_roles(
        search: SearchAccess,
        functions: Functions,
        pipelines: Sequence[PipelineConfig],
        provisioning: SearchProvisioning | None,
    ) -> None:
        """With fine-grained access control, the ML Commons callers' OpenSearch roles too; provisioning
        waits for the mapping, or the security plugin would refuse its first call."""
        members: dict[str, list[iam.IRole]] = {}
        if provisioning is not None and provisioning.role is not None:
            members[INDEX_ROLE] = [provisioning.role]
            members[ML_PROVISION_ROLE] = [provisioning.role]
        if uses_ml_commons(pipelines):
            members[ML_SUBMIT_ROLE] = functions.roles("start-job")
            members[ML_POLL_ROLE] = functions.roles("poll-job", "fail-job")
        mapping = search.map_roles(members)
        if mapping is not None and provisioning is not None:
            for resource in provisioning.resources.values():
                resource.node.add_dependency(mapping)

    def _bedrock(
        self, pipelines: Sequence[PipelineConfig], storage: Storage, functions: Functions
    ) -> BedrockAccess | None:
        """Grants of the backends some pipeline uses; returns the Bedrock job role's construct, if any."""
        if any(p.inference.backend in JOINING_BACKENDS for p in pipelines):
            grant_join_access(functions, storage)
        grant_openai_secrets(self, functions.roles(*OPENAI_CALLERS), pipelines)
        models = bedrock_models(pipelines)
        if not models:
            return None
        bedrock = BedrockAccess(self, "Bedrock", output_bucket=storage.output_bucket, model_ids=models)
        bedrock.grant_jobs(functions["start-job"], "CreateModelInvocationJob", "TagResource")
        bedrock.grant_pass_role(functions["start-job"])
        bedrock.grant_jobs(functions["poll-job"], "GetModelInvocationJob", "StopModelInvocationJob")
        bedrock.grant_jobs(functions["fail-job"], "StopModelInvocationJob")
        functions["start-job"].add_environment("BEDROCK_JOB_ROLE_ARN", bedrock.role.role_arn)
        return bedrock
