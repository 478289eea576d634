"""Alarms go to an encrypted, TLS-only topic; the dashboard and outputs show what the CLI and humans need."""

from __future__ import annotations

import json

from tests.infra.helpers import Synthesized, render


def test_alarm_topic_is_kms_encrypted_tls_only_and_open_to_cloudwatch(main: Synthesized) -> None:
    # Given the alarm topic, its policy and its key
    ((topic_id, topic),) = main.of_type("AWS::SNS::Topic").items()
    (policy,) = main.of_type("AWS::SNS::TopicPolicy").values()
    ((key_id, key),) = main.of_type("AWS::KMS::Key").items()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]

    # Then it is encrypted with a rotating customer key
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    # And it denies publishing without TLS
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    # And CloudWatch alarms of this account may publish, and use the key to do so
    (cloudwatch,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Action"] == "sns:Publish" and cloudwatch["Resource"] == {"Ref": topic_id}
    assert "aws:SourceAccount" in cloudwatch["Condition"]["StringEquals"]
    key_statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in key_statements)


def test_alarms_cover_dlq_errors_failures_and_dead_letters(main: Synthesized) -> None:
    # Given the alarms
    alarms = main.of_type("AWS::CloudWatch::Alarm")
    (topic_id,) = main.of_type("AWS::SNS::Topic")

    # Then each fires on the first occurrence and notifies the topic
    assert len(alarms) == 5
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["Threshold"] == 0 and props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["AlarmActions"] == [{"Ref": topic_id}]
    # And they watch the DLQ, all functions' errors, failed executions and the osbatch job metrics
    text = json.dumps(alarms)
    assert "ApproximateNumberOfMessagesVisible" in text and "ExecutionsFailed" in text
    assert "SUM(METRICS())" in text
    assert "SELECT SUM(JobsFailed) FROM osbatch" in text
    assert "SELECT SUM(DeadLetteredRecords) FROM osbatch" in text


def test_dashboard_shows_jobs_records_functions_queue_and_executions(main: Synthesized) -> None:
    # Given the dashboard body
    (dashboard,) = main.of_type("AWS::CloudWatch::Dashboard").values()
    body = render(dashboard["Properties"]["DashboardBody"])

    # Then it graphs every part of a job's path
    for title in (
        "Jobs",
        "Records",
        "Workflow executions",
        "Lambda errors",
        "Lambda duration",
        "Submit queue depth",
    ):
        assert f'"title":"{title}' in body, title
    for metric in ("JobsStarted", "JobsCompleted", "JobsFailed", "RecordsIndexed", "DeadLetteredRecords"):
        assert metric in body, metric
    assert dashboard["Properties"]["DashboardName"] == "osbatch"


def test_outputs_name_everything_the_cli_needs(main: Synthesized) -> None:
    # Given the stack outputs
    # Then all the documented names are exported
    assert set(main.outputs) == {
        "InputBucketName", "OutputBucketName", "DeadLetterBucketName", "JobTableName", "StateMachineArn",
        "SubmitQueueUrl", "SubmitDlqUrl", "AlarmTopicArn", "SageMakerRoleArn", "DashboardName",
    }  # fmt: skip


def test_created_domain_endpoint_is_an_output(created: Synthesized) -> None:
    # Given the stack that creates its domain
    # Then its endpoint is exported too
    assert render(created.outputs["OpenSearchEndpoint"]["Value"]).startswith("https://<")
