"""Alarms reach someone (e-mail, existing topics, ALARM and OK), cover what an operator expects, and the
dashboard and outputs show what the CLI and humans need."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from infra.functions import FUNCTIONS
from infra.notify import AlarmTargets
from osbatch.config import ConfigError
from tests.infra.helpers import ALARM_TARGETS, Synthesized, function_ids, render


def _alarms(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """Alarm name -> properties."""
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }


def _watched(props: dict[str, Any]) -> list[str]:
    """The metric names or Metrics Insights queries an alarm evaluates."""
    found = []
    for metric in props.get("Metrics", []):
        if "Expression" in metric:
            found.append(metric["Expression"])
        elif "MetricStat" in metric:
            found.append(metric["MetricStat"]["Metric"]["MetricName"])
    return found or [props["MetricName"]]


def _alarm_watching(synth: Synthesized, metric: str) -> list[dict[str, Any]]:
    return [props for props in _alarms(synth).values() if metric in _watched(props)]


def test_alarm_topic_is_kms_encrypted_tls_only_and_open_to_this_accounts_alarms(main: Synthesized) -> None:
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
    # And CloudWatch alarms of this account may publish, and use the key to do so, for this account only
    this_account = {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    (cloudwatch,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Action"] == "sns:Publish" and cloudwatch["Resource"] == {"Ref": topic_id}
    assert cloudwatch["Condition"]["StringEquals"] == this_account
    (key_statement,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert key_statement["Condition"] == {"StringEquals": this_account}


def test_the_configured_addresses_are_subscribed_to_the_alarm_topic(main: Synthesized) -> None:
    # Given the stack deployed with alarm_emails ops@ and oncall@
    (topic_id,) = main.of_type("AWS::SNS::Topic")
    subscriptions = [s["Properties"] for s in main.of_type("AWS::SNS::Subscription").values()]

    # Then each address has an e-mail subscription to the alarm topic
    assert sorted(s["Endpoint"] for s in subscriptions) == sorted(ALARM_TARGETS.emails)
    assert all(s["Protocol"] == "email" and s["TopicArn"] == {"Ref": topic_id} for s in subscriptions)


def test_every_alarm_notifies_on_alarm_and_on_ok_both_targets(main: Synthesized) -> None:
    # Given every alarm and the targets: the stack's topic and an existing paging topic
    (topic_id,) = main.of_type("AWS::SNS::Topic")
    expected = [{"Ref": topic_id}, *ALARM_TARGETS.topic_arns]

    for name, props in _alarms(main).items():
        # Then it notifies both when it fires and when it clears, and fires on its first breaching period
        assert props["ActionsEnabled"] is True, name
        assert props["AlarmActions"] == expected, name
        assert props["OKActions"] == expected, name
        assert props["EvaluationPeriods"] == 1 and props["DatapointsToAlarm"] == 1, name
        assert props["AlarmDescription"], name


def test_executions_that_fail_time_out_abort_or_are_throttled_alarm(main: Synthesized) -> None:
    # Given the alarms on the job workflow's metrics
    (machine,) = main.of_type("AWS::StepFunctions::StateMachine")
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted", "ExecutionThrottled"):
        (alarm,) = _alarm_watching(main, metric)
        # Then each fires on the first such execution of this state machine
        (query,) = alarm["Metrics"]
        stat = query["MetricStat"]
        assert stat["Metric"]["Namespace"] == "AWS/States" and stat["Stat"] == "Sum", metric
        assert stat["Metric"]["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine}}], (
            metric
        )
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold"), metric


def test_a_failed_job_raises_one_alarm_not_two(main: Synthesized) -> None:
    # Given the alarms
    watched = [query for props in _alarms(main).values() for query in _watched(props)]

    # Then ExecutionsFailed is the one alarm a failed job raises: JobsFailed and the functions' errors,
    # which the same failure also moves, are graphed only
    assert watched.count("ExecutionsFailed") == 1
    assert not [q for q in watched if "JobsFailed" in q]
    assert "Errors" not in watched


def test_every_function_alarms_when_throttled(main: Synthesized) -> None:
    # Given the Lambda Throttles alarms
    throttles = _alarm_watching(main, "Throttles")
    by_function = {
        alarm["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]: alarm
        for alarm in throttles
    }

    # Then there is one per function, firing on the first throttled invocation
    # (the job functions; search provisioning runs only during a deploy, which CloudFormation reports)
    assert set(by_function) == {function_ids(main)[name] for name in FUNCTIONS}
    assert len(throttles) == len(FUNCTIONS)
    assert all(alarm["Threshold"] == 0 for alarm in throttles)


def test_the_submit_queue_alarms_on_old_messages_and_on_dead_letters(main: Synthesized) -> None:
    # Given the submit queue and its DLQ, and the safety net's DLQ
    queues = list(main.of_type("AWS::SQS::Queue"))
    (queue,) = [q for q in queues if "SubmitQueue" in q]
    (dlq,) = [q for q in queues if "SubmitDlq" in q]
    (sweep_dlq,) = [q for q in queues if q.startswith("SweepDlq")]

    def queue_of(alarm: dict[str, Any]) -> str:
        return str(alarm["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0])

    # Then a message waiting 30 minutes in the submit queue alarms
    (age,) = _alarm_watching(main, "ApproximateAgeOfOldestMessage")
    assert queue_of(age) == queue and age["Threshold"] == 30 * 60
    # And so does the first message in the DLQ (the only other queue depth alarmed is the safety net's DLQ,
    # tests/infra/test_sweep.py)
    depths = {queue_of(alarm): alarm for alarm in _alarm_watching(main, "ApproximateNumberOfMessagesVisible")}
    assert set(depths) == {dlq, sweep_dlq}
    assert depths[dlq]["Threshold"] == 0


@pytest.mark.parametrize(
    ("query", "threshold"),
    [
        ("SELECT SUM(DeadLetteredRecords) FROM osbatch", 0),
        ("SELECT SUM(UnaccountedRecords) FROM osbatch", 0),
        ("SELECT SUM(FailedStatusCalls) FROM osbatch", 2),
        ("SELECT MAX(JobTimeoutUsedPercent) FROM osbatch", 75),
    ],
)
def test_osbatch_metrics_alarm_across_pipelines(main: Synthesized, query: str, threshold: int) -> None:
    # Given an alarm on an osbatch metric, whatever pipeline emitted it
    (alarm,) = _alarm_watching(main, query)

    # Then it fires above its threshold: any dead-lettered or unaccounted record, three failed status calls
    # in an hour, or a job past 75 % of its polling timeout; and no traffic is no incident
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (threshold, "GreaterThanThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"
    expected_period = 3600 if "FailedStatusCalls" in query else 300
    assert alarm["Metrics"][0]["Period"] == expected_period


def test_a_created_domain_alarms_on_health_storage_memory_and_blocked_writes(
    main: Synthesized, created: Synthesized
) -> None:
    # Given the stack that creates its domain, and one that uses existing domains
    (domain,) = created.of_type("AWS::OpenSearchService::Domain")
    domain_metrics = (
        "ClusterStatus.red",
        "FreeStorageSpace",
        "JVMMemoryPressure",
        "ClusterIndexWritesBlocked",
    )

    for metric in domain_metrics:
        # Then the created domain has each alarm, on its own metrics
        (alarm,) = _alarm_watching(created, metric)
        assert domain in json.dumps(alarm["Metrics"]), metric
        # And a stack that does not own its domain has none of them
        assert not _alarm_watching(main, metric), metric
    (red,) = _alarm_watching(created, "ClusterStatus.red")
    assert red["TreatMissingData"] == "breaching"  # a domain that stops reporting is not healthy


def test_a_stack_without_alarm_targets_warns_at_synth(created: Synthesized, main: Synthesized) -> None:
    # Given a stack deployed with no alarm_emails nor alarm_topic_arns, and one with both
    # Then the first warns that its alarms reach no one, and the second does not
    warning = Match.string_like_regexp("no alarm notification target")
    Annotations.from_stack(created.stack).has_warning("*", warning)
    Annotations.from_stack(main.stack).has_no_warning("*", warning)
    assert not created.of_type("AWS::SNS::Subscription")


def test_alarm_targets_come_from_context_and_are_checked() -> None:
    # Given context as `-c alarm_emails=a,b -c alarm_topic_arns=arn` passes it, and as cdk.json lists do
    targets = AlarmTargets.from_context(
        " ops@example.com,oncall@example.com ", ["arn:aws:sns:eu-west-1:111122223333:paging"]
    )
    # Then both forms are read, trimmed and kept in order
    assert targets.emails == ("ops@example.com", "oncall@example.com")
    assert targets.topic_arns == ("arn:aws:sns:eu-west-1:111122223333:paging",)
    assert AlarmTargets.from_context(None, "").empty
    # And a value that is not what its key says is refused, naming the key and the value
    with pytest.raises(ConfigError, match=r"context alarm_emails: 'ops' is not an e-mail address"):
        AlarmTargets.from_context("ops", None)
    with pytest.raises(ConfigError, match=r"context alarm_topic_arns: 'paging' is not an SNS topic ARN"):
        AlarmTargets.from_context(None, "paging")


def test_dashboard_shows_jobs_records_functions_queue_and_executions(main: Synthesized) -> None:
    # Given the dashboard body
    (dashboard,) = main.of_type("AWS::CloudWatch::Dashboard").values()
    body = render(dashboard["Properties"]["DashboardBody"])

    # Then it graphs every part of a job's path, including what is emitted but not alarmed
    for metric in (
        "JobsStarted", "JobsCompleted", "JobsFailed", "RecordsIn", "RecordsIndexed", "DeadLetteredRecords",
        "UnaccountedRecords", "FailedStatusCalls", "JobTimeoutUsedPercent", "ExecutionsStarted",
        "ApproximateAgeOfOldestMessage", "Throttles", "Errors", "Duration",
    ):  # fmt: skip
        assert metric in body, metric
    for name in FUNCTIONS:
        assert f"{name} function" in body, name
    assert dashboard["Properties"]["DashboardName"] == "osbatch"


def test_outputs_name_everything_the_cli_needs(main: Synthesized) -> None:
    # Given the stack outputs
    # Then all the documented names are exported
    assert set(main.outputs) == {
        "InputBucketName", "OutputBucketName", "DeadLetterBucketName", "JobTableName", "StateMachineArn",
        "SubmitQueueUrl", "SubmitDlqUrl", "SweepDlqUrl", "FailJobFunctionName", "AlarmTopicArn",
        "SageMakerRoleArn", "DashboardName",
    }  # fmt: skip


def test_created_domain_endpoint_is_an_output(created: Synthesized) -> None:
    # Given the stack that creates its domain
    # Then its endpoint is exported too
    assert render(created.outputs["OpenSearchEndpoint"]["Value"]).startswith("https://<")


def _dashboard_widgets(synth: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    """(the section's header text, widget) for every metric widget, in dashboard order."""
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(render(dashboard["Properties"]["DashboardBody"]))
    found, section = [], ""
    for widget in body["widgets"]:
        if widget["type"] == "text":
            section = widget["properties"]["markdown"]
        elif widget["type"] == "metric":
            found.append((section, widget))
    return found


def _charts(widget: dict[str, Any]) -> str:
    return json.dumps(widget["properties"]["metrics"])


def test_no_widget_charts_the_iterator_age_of_functions_without_stream_sources(main: Synthesized) -> None:
    # Given the dashboard's widgets (no function of the stack has a Kinesis or DynamoDB stream source)
    widgets = _dashboard_widgets(main)
    # Then none charts IteratorAge, which only stream event sources emit, and every function still has its
    # invocation and error graphs
    assert widgets and not [title for title, w in widgets if "IteratorAge" in _charts(w)]
    functions = function_ids(main)
    for name in set(FUNCTIONS) - {"fail-job"}:
        charted = {w["properties"]["title"] for _, w in widgets if f"<{functions[name]}>" in _charts(w)}
        assert {"TPS", "Latency", "Invocations", "Errors"} <= charted, name


def test_fail_jobs_section_charts_the_failed_jobs_series_finalize_zeroes(main: Synthesized) -> None:
    # Given the widgets that chart the fail-job function, which a successful job never runs
    fail_job = f"<{function_ids(main)['fail-job']}>"
    widgets = [(section, w) for section, w in _dashboard_widgets(main) if fail_job in _charts(w)]

    # Then there is one, in the fail-job section, and it charts JobsFailed (0 from Finalize after each
    # success, 1 from FailJob) next to fail-job's own invocations and errors, so it has data after a success
    ((section, widget),) = widgets
    assert "fail-job function" in section
    charted = _charts(widget)
    assert "SELECT SUM(JobsFailed) FROM osbatch" in charted
    assert '"Invocations"' in charted and '"Errors"' in charted
    # And fail-job still alarms when throttled (its errors fail the execution, which ExecutionsFailed alarms)
    throttles = [a for a in _alarm_watching(main, "Throttles") if fail_job[1:-1] in json.dumps(a["Metrics"])]
    assert len(throttles) == 1
