"""A small CDK app with everything the emulator must handle, synthesized by the integration test.

Bucket (EventBridge on; its SSL-only policy is skipped by moto's CloudFormation) -> rule (Object Created,
key wildcard in/*.jsonl) -> queue
(+ KMS-encrypted DLQ, alarm to SNS) -> echo Lambda (partial batch responses) -> state machine:
Wait -> Lambda -> Choice -> Distributed Map over an S3 JSON array -> Succeed, or -> a task that raises
BackendThrottled, retried and then caught. Plus a table with a GSI, and functions that overrun their
timeout or memory, a reserved-concurrency function, and a fan-out of 8 that records when each item ran.
The search endpoint comes from context, as the osbatch stack's local endpoint does.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

HANDLERS = Path(__file__).parent / "handlers"
STACK_NAME = "EmulatorTestStack"
SEARCH_ENDPOINT = "http://127.0.0.1:9200"
FAN_OUT_ITEMS = 8


class EmulatorTestStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # enforce_ssl adds the aws:SecureTransport Deny that the emulator must not apply to its requests.
        bucket = s3.Bucket(self, "Inbox", enforce_ssl=True, encryption=s3.BucketEncryption.S3_MANAGED)
        # As infra/storage.py does: the native property, not the custom resource `event_bridge_enabled` makes.
        cfn_bucket = bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )
        table = dynamodb.Table(
            self,
            "Jobs",
            partition_key=dynamodb.Attribute(name="job_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="item", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        )
        table.add_global_secondary_index(
            index_name="by-pipeline",
            partition_key=dynamodb.Attribute(name="pipeline", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.NUMBER),
        )
        search_endpoint = self.node.try_get_context("search_endpoint") or "https://search.invalid"
        code = lambda_.Code.from_asset(str(HANDLERS))

        def function(
            name: str,
            handler: str,
            *,
            timeout: int = 30,
            memory: int = 128,
            reserved: int | None = None,
            **env: str,
        ) -> lambda_.Function:
            return lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_11,
                handler=handler,
                code=code,
                timeout=cdk.Duration.seconds(timeout),
                memory_size=memory,
                reserved_concurrent_executions=reserved,
                environment={"BUCKET": bucket.bucket_name, **env},
            )

        step = function("Step", "workflow.step")
        chunk = function("Chunk", "workflow.chunk")
        throttled = function("Throttled", "workflow.throttled")
        definition = self._definition(bucket, step, chunk, throttled)
        machine = sfn.StateMachine(
            self, "Workflow", definition_body=sfn.DefinitionBody.from_chainable(definition)
        )

        limits = {
            "SleepyFunctionName": function("Sleepy", "limits.sleepy", timeout=2),
            "HungryFunctionName": function("Hungry", "limits.hungry", memory=128),
            "CrashFunctionName": function("Crash", "limits.crash"),
            "GateFunctionName": function("Gate", "limits.gate", reserved=1),
        }
        overlap = function("Overlap", "limits.overlap")
        for granted in (limits["GateFunctionName"], overlap):
            bucket.grant_read_write(granted)
        fan_out = sfn.DistributedMap(
            self,
            "FanOutAll",
            items_path="$.items",
            max_concurrency=FAN_OUT_ITEMS,
            result_path=sfn.JsonPath.DISCARD,
        )
        fan_out.item_processor(
            tasks.LambdaInvoke(self, "RecordOverlap", lambda_function=overlap, payload_response_only=True)
        )
        overlap_machine = sfn.StateMachine(
            self, "OverlapWorkflow", definition_body=sfn.DefinitionBody.from_chainable(fan_out)
        )

        dead_letters = sqs.Queue(
            self,
            "InboxDlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=kms.Key(self, "DlqKey"),
        )
        alarms = sns.Topic(self, "Alarms")
        alarm = dead_letters.metric_approximate_number_of_messages_visible().create_alarm(
            self, "DlqNotEmpty", threshold=1, evaluation_periods=1
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(alarms))
        queue = sqs.Queue(
            self,
            "InboxQueue",
            visibility_timeout=cdk.Duration.seconds(30),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=2),
        )
        events.Rule(
            self,
            "ObjectCreated",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [bucket.bucket_name]},
                    "object": {"key": [{"wildcard": "in/*.jsonl"}]},
                },
            ),
            targets=[targets.SqsQueue(queue)],
        )
        echo = function(
            "Echo",
            "echo.handler",
            STATE_MACHINE_ARN=machine.state_machine_arn,
            GREETING="from the template",
            SEARCH_ENDPOINT=search_endpoint,
        )
        echo.add_event_source(sources.SqsEventSource(queue, batch_size=5, report_batch_item_failures=True))
        bucket.grant_read_write(echo)
        machine.grant_start_execution(echo)
        for granted in (chunk, throttled):
            bucket.grant_read_write(granted)

        for name, value in {
            "BucketName": bucket.bucket_name,
            "QueueUrl": queue.queue_url,
            "DlqUrl": dead_letters.queue_url,
            "StateMachineArn": machine.state_machine_arn,
            "EchoFunctionName": echo.function_name,
            "TableName": table.table_name,
            "OverlapStateMachineArn": overlap_machine.state_machine_arn,
            **{output: limited.function_name for output, limited in limits.items()},
            "AlarmName": alarm.alarm_name,
        }.items():
            cdk.CfnOutput(self, name, value=value)

    def _definition(
        self,
        bucket: s3.IBucket,
        step: lambda_.IFunction,
        chunk: lambda_.IFunction,
        throttled: lambda_.IFunction,
    ) -> sfn.IChainable:
        done = sfn.Succeed(self, "Done")
        fan_out = sfn.DistributedMap(
            self,
            "FanOut",
            item_reader=sfn.S3JsonItemReader(bucket=bucket, key=sfn.JsonPath.string_at("$.items_key")),
            item_selector={
                "job": sfn.JsonPath.string_at("$.job_id"),
                "item": sfn.JsonPath.string_at("$$.Map.Item.Value"),
            },
            max_concurrency=2,
            result_path=sfn.JsonPath.DISCARD,
        )
        # payload_response_only: this Task's Resource is the plain function ARN.
        fan_out.item_processor(
            tasks.LambdaInvoke(self, "IngestItem", lambda_function=chunk, payload_response_only=True)
        )
        backend = tasks.LambdaInvoke(self, "CallBackend", lambda_function=throttled, output_path="$.Payload")
        backend.add_retry(errors=["BackendThrottled"], interval=cdk.Duration.seconds(10), max_attempts=1)
        recovered = sfn.Pass(self, "Recovered", parameters={"recovered": True, "error.$": "$.error.Error"})
        backend.add_catch(recovered.next(done), errors=["BackendThrottled"], result_path="$.error")
        return (
            sfn.Wait(self, "Pause", time=sfn.WaitTime.seconds_path("$.wait_seconds"))
            .next(tasks.LambdaInvoke(self, "RunStep", lambda_function=step, output_path="$.Payload"))
            .next(
                sfn.Choice(self, "Route")
                .when(sfn.Condition.string_equals("$.mode", "fail"), backend.next(done))
                .when(sfn.Condition.string_equals("$.mode", "wait"), done)
                .otherwise(fan_out.next(done))
            )
        )


def synthesize(outdir: Path, **context: str) -> Path:
    """Synthesize the app into `outdir` (a cloud assembly) without Docker bundling; returns `outdir`."""
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:bundling-stacks": [], **context})
    EmulatorTestStack(app, STACK_NAME)
    app.synth()
    return outdir
