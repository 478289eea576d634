"""S3 -> EventBridge -> SQS -> submit: patterns, dead-letter queues and the event source mapping."""

from __future__ import annotations

from infra.trigger import key_wildcard
from tests.infra.helpers import Synthesized, function_ids, render, trigger_rules


def _queues(main: Synthesized) -> tuple[str, str]:
    ids = list(main.of_type("AWS::SQS::Queue"))
    (queue,) = [i for i in ids if "SubmitQueue" in i]
    (dlq,) = [i for i in ids if "SubmitDlq" in i]
    return queue, dlq


def test_submit_queue_redrives_to_its_dlq_after_five_receives(main: Synthesized) -> None:
    # Given the submit queue and its DLQ
    queue, dlq = _queues(main)
    props = main.resources[queue]["Properties"]

    # Then a message received five times moves to the DLQ
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
        "maxReceiveCount": 5,
    }
    # And a batch is not redelivered while the function may still be working on it
    assert props["VisibilityTimeout"] >= 6 * 30


def test_queues_are_encrypted_and_deny_plain_http(main: Synthesized) -> None:
    # Given both queues and their policies
    queue, dlq = _queues(main)

    # Then both are encrypted at rest
    for logical_id in (queue, dlq):
        props = main.resources[logical_id]["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props

    # And each has a policy that denies requests without TLS (the stack's other queues have theirs too)
    guarded: set[str] = set()
    for policy in main.of_type("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
            if "Condition" in s
        ):
            guarded.update(q["Ref"] for q in policy["Properties"]["Queues"])
    assert {queue, dlq} <= guarded


def test_one_rule_per_pipeline_matches_its_prefix_and_suffix(main: Synthesized) -> None:
    # Given the EventBridge rules
    rules = trigger_rules(main)
    queue, dlq = _queues(main)
    input_bucket = next(k for k in main.of_type("AWS::S3::Bucket") if k.startswith("StorageInput"))

    # Then each pipeline's rule matches Object Created on the input bucket under its prefix and suffix
    patterns = {render(r["Properties"]["Description"]): r["Properties"] for r in rules.values()}
    assert len(rules) == 2
    keys = {}
    for props in patterns.values():
        pattern = props["EventPattern"]
        assert pattern["source"] == ["aws.s3"]
        assert pattern["detail-type"] == ["Object Created"]
        assert pattern["detail"]["bucket"] == {"name": [{"Ref": input_bucket}]}
        (key,) = pattern["detail"]["object"]["key"]
        keys[key["wildcard"]] = props
        # And delivers to the submit queue, with undeliverable events parked in the DLQ
        (target,) = props["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}
    assert set(keys) == {"input/python-docs/*.jsonl", "input/docs/*.json"}


def test_submit_consumes_batches_of_ten_with_partial_failures(main: Synthesized) -> None:
    # Given the event source mapping
    queue, _ = _queues(main)

    # Then submit reads the queue ten messages at a time and reports failed items only
    main.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue, "Arn"]},
            "FunctionName": {"Ref": function_ids(main)["submit"]},
            "BatchSize": 10,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_key_wildcard_escapes_eventbridge_metacharacters() -> None:
    # Given a prefix containing '*' and a backslash
    # When the wildcard is built
    pattern = key_wildcard("in/a*b\\c/", ".jsonl")

    # Then they are matched literally and only the middle is a wildcard
    assert pattern == "in/a\\*b\\\\c/*.jsonl"
