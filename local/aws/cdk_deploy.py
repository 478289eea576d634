"""`cdk deploy` against the emulator: publish a stack's assets, then create or update it in CloudFormation.

The same steps the CDK CLI takes (https://docs.aws.amazon.com/cdk/v2/guide/deploy.html): the bootstrap
assets bucket and version parameter exist (`cdk bootstrap`), every file asset of the cloud assembly is
uploaded under its content-hash key (`cdk-assets`), and the template goes to CloudFormation by URL. A stack
that exists is updated in place, so buckets, tables and their data survive a redeploy.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local.aws import session

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# What `cdk bootstrap` of CDK v2 writes; the template's CheckBootstrapVersion rule wants at least 6.
BOOTSTRAP_VERSION = "21"
# Fixed timestamps make the zip of an unchanged directory byte-identical, as cdk-assets' zips are.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class DeployError(RuntimeError):
    """The stack did not reach a *_COMPLETE state; the message has CloudFormation's reason."""


@dataclass(frozen=True)
class DeployedStack:
    stack_name: str
    stack_id: str
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    resources: dict[str, tuple[str, str]] = field(default_factory=dict)  # logical id -> (type, physical id)

    @property
    def account_id(self) -> str:
        return self.stack_id.split(":")[4]

    def physical_id(self, logical_id: str) -> str:
        return self.resources[logical_id][1]

    def of_type(self, resource_type: str) -> dict[str, str]:
        return {k: physical for k, (kind, physical) in self.resources.items() if kind == resource_type}


@dataclass(frozen=True)
class StackArtifact:
    """One stack of a cloud assembly (manifest.json and its `<stack>.assets.json`)."""

    name: str
    template_file: Path
    assets: list[dict[str, Any]]

    @classmethod
    def read(cls, cdk_out: Path, stack_name: str) -> StackArtifact:
        manifest = json.loads((cdk_out / "manifest.json").read_text())
        artifacts: dict[str, Any] = manifest["artifacts"]
        for artifact_id, artifact in artifacts.items():
            properties = artifact.get("properties", {})
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            if stack_name not in (artifact_id, properties.get("stackName")):
                continue
            assets = []
            for dependency in artifact.get("dependencies", []):
                if artifacts.get(dependency, {}).get("type") == "cdk:asset-manifest":
                    asset_file = cdk_out / artifacts[dependency]["properties"]["file"]
                    assets += json.loads(asset_file.read_text()).get("files", {}).values()
            return cls(properties.get("stackName", artifact_id), cdk_out / properties["templateFile"], assets)
        raise DeployError(f"stack {stack_name} is not in the cloud assembly {cdk_out}")


def deploy_assembly(
    cdk_out: Path, stack_name: str, *, endpoint_url: str, progress: Callable[[str], None] = print
) -> DeployedStack:
    artifact = StackArtifact.read(cdk_out, stack_name)
    aws = session()
    cloudformation = aws.client("cloudformation", endpoint_url=endpoint_url)
    account = str(aws.client("sts", endpoint_url=endpoint_url).get_caller_identity()["Account"])
    region = cloudformation.meta.region_name
    template_url = publish_assets(aws.client("s3", endpoint_url=endpoint_url), artifact, account, region)
    ensure_bootstrap_version(aws.client("ssm", endpoint_url=endpoint_url))
    progress(f"deploying stack {artifact.name} to {endpoint_url} through CloudFormation")
    arguments = {"StackName": artifact.name, "TemplateURL": template_url, "Capabilities": CAPABILITIES}
    if _stack_exists(cloudformation, artifact.name):
        try:
            cloudformation.update_stack(**arguments)
        except ClientError as error:
            if "No updates are to be performed" not in str(error):
                raise
    else:
        cloudformation.create_stack(**arguments)
    return describe(cloudformation, artifact.name)


def describe(cloudformation: Any, stack_name: str) -> DeployedStack:
    # moto runs create and update synchronously: the stack is settled when the call returns.
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    status = str(stack["StackStatus"])
    if not status.endswith("_COMPLETE") or "ROLLBACK" in status:
        raise DeployError(f"stack {stack_name} is {status}: {stack.get('StackStatusReason', '')}")
    paginator = cloudformation.get_paginator("list_stack_resources")
    resources = {
        item["LogicalResourceId"]: (item["ResourceType"], item["PhysicalResourceId"])
        for page in paginator.paginate(StackName=stack_name)
        for item in page["StackResourceSummaries"]
    }
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    return DeployedStack(stack_name, stack["StackId"], status, outputs, resources)


def publish_assets(s3: Any, artifact: StackArtifact, account: str, region: str) -> str:
    """Upload every file asset (skipping keys already there: keys are content hashes); the template's URL."""
    template_url = ""
    for asset in artifact.assets:
        source = asset["source"]
        path = artifact.template_file.parent / source["path"]  # an absolute path stays absolute
        for destination in asset["destinations"].values():
            bucket = _substitute(destination["bucketName"], account, region)
            key = destination["objectKey"]
            _ensure_bucket(s3, bucket)
            if not _object_exists(s3, bucket, key):
                body = (
                    zip_directory(path)
                    if source.get("packaging") == "zip" and path.is_dir()
                    else path.read_bytes()
                )
                s3.put_object(Bucket=bucket, Key=key, Body=body)
            if path == artifact.template_file:
                template_url = f"https://s3.{region}.amazonaws.com/{bucket}/{key}"
    if not template_url:
        raise DeployError(f"the assets manifest of {artifact.name} does not publish its template")
    return template_url


def ensure_bootstrap_version(ssm: Any) -> None:
    """The SSM parameter `cdk bootstrap` writes, which the template's BootstrapVersion parameter reads."""
    name = "/cdk-bootstrap/hnb659fds/version"
    try:
        ssm.get_parameter(Name=name)
    except ClientError:
        ssm.put_parameter(Name=name, Value=BOOTSTRAP_VERSION, Type="String")


def zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                path = Path(root, name)
                info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), _ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _substitute(value: str, account: str, region: str) -> str:
    return (
        value.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def _stack_exists(cloudformation: Any, name: str) -> bool:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError:
        return False
    return any(stack["StackStatus"] != "DELETE_COMPLETE" for stack in stacks)


def _ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)


def _object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True
