"""Shape conversions of the local CloudFormation loader's resource handlers (no network)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from local.aws.cfn_loader.assembly import read_stack
from local.aws.cfn_loader.resources.base import zip_directory
from local.aws.cfn_loader.resources.s3 import notification_configuration
from local.aws.cfn_loader.resources.workflow import definition


def test_bucket_notification_configuration_is_converted_to_the_api_shape() -> None:
    # Given CloudFormation's NotificationConfiguration with EventBridge and a filtered queue
    cfn = {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True},
        "QueueConfigurations": [
            {
                "Event": "s3:ObjectCreated:*",
                "Queue": "arn:aws:sqs:us-east-1:123456789012:q",
                "Filter": {"S3Key": {"Rules": [{"Name": "suffix", "Value": ".jsonl"}]}},
            }
        ],
    }
    # When it is converted
    api = notification_configuration(cfn)
    # Then it is what PutBucketNotificationConfiguration takes
    assert api == {
        "EventBridgeConfiguration": {},
        "QueueConfigurations": [
            {
                "QueueArn": "arn:aws:sqs:us-east-1:123456789012:q",
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".jsonl"}]}},
            }
        ],
    }


def test_state_machine_definition_substitutions_are_applied_and_nothing_else_changes() -> None:
    # Given a CDK-style definition string with a substitution and a Wait state
    body = '{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":60,"Next":"T"},"T":{"Resource":"${Fn}"}}}'
    # When the definition is built
    text = definition({"DefinitionString": body, "DefinitionSubstitutions": {"Fn": "arn:aws:lambda:f"}})
    # Then only the placeholder is replaced: the 60s Wait stays as written
    assert json.loads(text)["States"] == {
        "W": {"Type": "Wait", "Seconds": 60, "Next": "T"},
        "T": {"Resource": "arn:aws:lambda:f"},
    }


def test_asset_zips_are_reproducible_and_leave_out_bytecode(tmp_path: Path) -> None:
    # Given an asset directory with a package and a stray __pycache__
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "handler.py").write_text("def handler(e, c): return e\n")
    (tmp_path / "pkg" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    # When it is zipped twice
    first, second = zip_directory(tmp_path), zip_directory(tmp_path)
    # Then the bytes are identical (so redeploys skip the code update) and bytecode is left out
    assert first == second
    assert zipfile.ZipFile(io.BytesIO(first)).namelist() == ["pkg/__init__.py", "pkg/handler.py"]


def test_the_assets_manifest_maps_object_keys_to_asset_directories(tmp_path: Path) -> None:
    # Given a minimal cloud assembly with one stack and one directory asset
    (tmp_path / "asset.abc").mkdir()
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "artifacts": {
                    "App.assets": {"type": "cdk:asset-manifest", "properties": {"file": "App.assets.json"}},
                    "App": {
                        "type": "aws:cloudformation:stack",
                        "environment": "aws://unknown-account/eu-west-1",
                        "properties": {"templateFile": "App.template.json", "stackName": "app-dev"},
                        "dependencies": ["App.assets"],
                    },
                }
            }
        )
    )
    (tmp_path / "App.template.json").write_text('{"Resources": {}}')
    destination = {"bucketName": "cdk-assets", "objectKey": "abc.zip"}
    (tmp_path / "App.assets.json").write_text(
        json.dumps(
            {
                "files": {
                    "abc": {
                        "source": {"path": "asset.abc", "packaging": "zip"},
                        "destinations": {"d": destination},
                    }
                }
            }
        )
    )
    # When the stack is read by its stack name
    artifact = read_stack(tmp_path, "app-dev")
    # Then the S3 key of the Lambda code leads to the directory, and the environment is parsed
    asset = artifact.asset_for_key("abc.zip")
    assert asset is not None and asset.path == tmp_path / "asset.abc" and asset.packaging == "zip"
    assert (artifact.stack_name, artifact.account, artifact.region) == ("app-dev", None, "eu-west-1")
