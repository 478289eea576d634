"""Buckets and the job table: encryption, TLS-only access, no public access, and expiry of work data."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.infra.helpers import Synthesized, as_list, render


def _bucket_id(main: Synthesized, construct_id: str) -> str:
    (logical_id,) = [k for k in main.of_type("AWS::S3::Bucket") if k.startswith(f"Storage{construct_id}")]
    return logical_id


def test_every_bucket_is_encrypted_private_and_logged(main: Synthesized) -> None:
    # Given the synthesized stack
    buckets = main.of_type("AWS::S3::Bucket")

    # Then there are the access-log, input, output and dead-letter buckets, each encrypted and private
    assert len(buckets) == 4
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}, logical_id
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        # And every bucket but the log bucket itself writes server access logs
        if not logical_id.startswith("StorageAccessLogs"):
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {
                "Ref": _bucket_id(main, "AccessLogs")
            }


def test_every_bucket_policy_denies_plain_http(main: Synthesized) -> None:
    # Given the bucket policies
    policies = main.of_type("AWS::S3::BucketPolicy")

    # Then each bucket has one, and it denies any request without TLS
    assert {p["Properties"]["Bucket"]["Ref"] for p in policies.values()} == set(
        main.of_type("AWS::S3::Bucket")
    )
    for policy in policies.values():
        denies = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert denies, render(policy["Properties"]["Bucket"])
        assert denies[0]["Principal"] == {"AWS": "*"}


def test_dead_letters_and_job_work_data_expire(main: Synthesized) -> None:
    # Given the lifecycle rules of the dead-letter and output buckets
    def rules(construct_id: str) -> list[dict]:
        return main.resources[_bucket_id(main, construct_id)]["Properties"]["LifecycleConfiguration"]["Rules"]

    # Then dead letters and jobs/ expire after a fixed number of days, while reports/ are kept
    (dead,) = [r for r in rules("DeadLetter") if r.get("Prefix") == "dead-letter/"]
    assert dead["Status"] == "Enabled" and dead["ExpirationInDays"] == 30
    (work,) = [r for r in rules("Output") if r.get("Prefix") == "jobs/"]
    assert work["Status"] == "Enabled" and work["ExpirationInDays"] == 14
    assert all(r.get("Prefix") != "reports/" for r in rules("Output"))


def test_input_bucket_is_versioned_and_sends_events_to_eventbridge(main: Synthesized) -> None:
    # Given the input bucket
    props = main.resources[_bucket_id(main, "Input")]["Properties"]

    # Then overwritten uploads are recoverable and every object event reaches EventBridge
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    # And no custom-resource Lambda was needed to turn that on
    assert not main.of_type("Custom::S3BucketNotifications")


def test_job_table_matches_the_contract(main: Synthesized) -> None:
    # Given the job table
    main.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            # Then its keys, sparse GSI, billing, encryption and recovery are as documented
            "KeySchema": [
                {"AttributeName": "job_id", "KeyType": "HASH"},
                {"AttributeName": "item", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": Match.array_with(
                [
                    {"AttributeName": "pipeline", "AttributeType": "S"},
                    {"AttributeName": "created_at", "AttributeType": "S"},
                ]
            ),
            "GlobalSecondaryIndexes": [
                Match.object_like(
                    {
                        "IndexName": "by-pipeline",
                        "KeySchema": [
                            {"AttributeName": "pipeline", "KeyType": "HASH"},
                            {"AttributeName": "created_at", "KeyType": "RANGE"},
                        ],
                    }
                )
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"SSEEnabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )
    (table,) = main.of_type("AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "Retain"
    assert [a for a in as_list(table["Properties"]["AttributeDefinitions"]) if a["AttributeName"] == "job_id"]
