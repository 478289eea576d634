"""What every resource handler gets (clients, names, assets) and returns (physical id, attributes)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local.aws.cfn_loader.assembly import StackArtifact
from local.aws.cfn_loader.intrinsics import TemplateError
from local.aws.cfn_loader.stack import StackResource

# Fixed timestamps make the zip of an unchanged asset byte-identical, so redeploys skip the code update.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Created:
    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    action: str = "created"  # "created", "updated", "exists" or "applied" (an idempotent put)


@dataclass
class DeployContext:
    artifact: StackArtifact
    region: str
    account_id: str
    endpoint_url: str
    environment_overrides: dict[str, str]
    previous: dict[str, StackResource]
    progress: Callable[[str], None]
    _session: boto3.session.Session = field(init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _zips: dict[Path, bytes] = field(default_factory=dict, repr=False)
    _noted: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self._session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region
        )

    @property
    def stack_name(self) -> str:
        return self.artifact.stack_name

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]
        return self._clients[service]

    def note(self, message: str) -> None:
        self.progress(f"    note: {message}")

    def note_once(self, topic: str, message: str) -> None:
        if topic not in self._noted:
            self._noted.add(topic)
            self.note(message)

    def physical_name(self, logical_id: str, *, max_length: int = 64, lowercase: bool = False) -> str:
        """`<stack>-<logical id>-<hash>` like CloudFormation's generated names, but stable across deploys,
        so a redeploy finds what the last one created."""
        digest = hashlib.sha256(f"{self.stack_name}/{logical_id}".encode()).hexdigest()[:8].upper()
        prefix = f"{self.stack_name}-{logical_id}"
        if lowercase:
            prefix, digest = re.sub(r"[^a-z0-9-]", "-", prefix.lower()), digest.lower()
        return f"{prefix[: max_length - len(digest) - 1].rstrip('-')}-{digest}"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        region_part = self.region if region else ""
        account_part = self.account_id if account else ""
        return f"arn:aws:{service}:{region_part}:{account_part}:{resource}"

    def asset_zip(self, code: dict[str, Any]) -> bytes:
        """The zip for a Code/Content property that points at a cdk asset (S3Bucket + S3Key)."""
        key = code.get("S3Key", "")
        asset = self.artifact.asset_for_key(key)
        if asset is None:
            raise TemplateError(f"no file asset for S3Key '{key}' in the assets manifest")
        if asset.path not in self._zips:
            self._zips[asset.path] = (
                asset.path.read_bytes() if asset.path.is_file() else zip_directory(asset.path)
            )
        return self._zips[asset.path]


def zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(directory):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".pyc"):
                    continue
                path = Path(root, name)
                info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), _ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def zip_inline(file_name: str, source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(file_name, _ZIP_EPOCH), source)
    return buffer.getvalue()


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


Handler = Callable[[DeployContext, str, dict[str, Any]], Created]
