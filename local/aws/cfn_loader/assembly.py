"""Read one stack out of a `cdk synth` cloud assembly: its template, its file assets, its environment.

https://github.com/aws/aws-cdk/tree/main/packages/aws-cdk-lib/cloud-assembly-schema (manifest.json and
the `<stack>.assets.json` asset manifest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.aws.cfn_loader.intrinsics import TemplateError


@dataclass(frozen=True)
class FileAsset:
    path: Path  # absolute: a directory to zip, or a file (packaging "file")
    packaging: str  # "zip" (a directory) or "file"


@dataclass(frozen=True)
class StackArtifact:
    stack_name: str
    template: dict[str, Any]
    assets: dict[str, FileAsset] = field(default_factory=dict)  # S3 object key -> asset
    account: str | None = None
    region: str | None = None

    def asset_for_key(self, object_key: str) -> FileAsset | None:
        return self.assets.get(object_key)


def read_stack(cdk_out: Path, stack_name: str) -> StackArtifact:
    manifest = _json(cdk_out / "manifest.json")
    artifacts: dict[str, Any] = manifest.get("artifacts", {})
    stacks = {
        artifact_id: artifact
        for artifact_id, artifact in artifacts.items()
        if artifact.get("type") == "aws:cloudformation:stack"
    }
    match = next(
        (
            (artifact_id, artifact)
            for artifact_id, artifact in stacks.items()
            if stack_name
            in (artifact_id, artifact.get("properties", {}).get("stackName"), artifact.get("displayName"))
        ),
        None,
    )
    if match is None:
        raise TemplateError(
            f"stack '{stack_name}' is not in {cdk_out}; it has: {', '.join(sorted(stacks)) or 'none'}"
        )
    artifact_id, artifact = match
    template = _json(cdk_out / artifact["properties"]["templateFile"])
    assets: dict[str, FileAsset] = {}
    for dependency in artifact.get("dependencies", []):
        dependent = artifacts.get(dependency, {})
        if dependent.get("type") == "cdk:asset-manifest":
            assets |= _file_assets(cdk_out, cdk_out / dependent["properties"]["file"])
    account, region = _environment(artifact.get("environment", ""))
    name = artifact.get("properties", {}).get("stackName") or artifact_id
    return StackArtifact(name, template, assets, account, region)


def _file_assets(cdk_out: Path, manifest_path: Path) -> dict[str, FileAsset]:
    assets: dict[str, FileAsset] = {}
    for entry in _json(manifest_path).get("files", {}).values():
        source = entry.get("source", {})
        if "path" not in source:
            continue  # an asset built by an executable: nothing on disk to upload
        asset = FileAsset(cdk_out / source["path"], source.get("packaging", "file"))
        for destination in entry.get("destinations", {}).values():
            assets[destination["objectKey"]] = asset
    return assets


def _environment(environment: str) -> tuple[str | None, str | None]:
    # "aws://123456789012/eu-west-1", or "aws://unknown-account/unknown-region" for env-agnostic stacks
    parts = environment.removeprefix("aws://").split("/")
    if len(parts) != 2:
        return None, None
    account, region = parts
    return (
        None if account.startswith("unknown") else account,
        None if region.startswith("unknown") else region,
    )


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise TemplateError(f"{path} does not exist; run `cdk synth` first") from None
