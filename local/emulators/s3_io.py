"""S3 for the emulators: list inputs, stream lines in bounded memory, write outputs part by part.

The worker talks to S3 through boto3 like a real service would: to the moto server's endpoint when it runs
inside the server process, or through moto's in-process mock in unit tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import local.aws

S3Client = Any  # botocore's generated client; typed loosely so the stubs stay optional
ClientFactory = Callable[[str], S3Client]

READ_CHUNK_BYTES = 1024 * 1024
# S3 wants every part but the last to be at least 5 MiB; 8 MiB parts keep at most that much in memory.
PART_BYTES = 8 * 1024 * 1024
_S3_URI = re.compile(r"^(?:s3|https)://([^/]+)/?(.*)$")


class LineTooLong(ValueError):
    """A line grew past the caller's bound before its newline: reading on would load it whole."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        # SageMaker accepts s3:// and https:// forms (TransformOutput.S3OutputPath pattern).
        match = _S3_URI.match(uri)
        if not match:
            raise ValueError(f"not an S3 URI: {uri!r}")
        return cls(match.group(1), match.group(2))

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def client_factory(endpoint_url: str | None) -> ClientFactory:
    """S3 clients for worker threads, one boto3 Session each (boto3's default session is not thread-safe).

    The local runtime's credentials serve both the moto server (endpoint_url) and moto's in-process mock
    (None), which accept any.
    """

    def make(region: str) -> S3Client:
        return local.aws.session(region).client("s3", endpoint_url=endpoint_url)

    return make


def list_keys(s3: S3Client, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def read_text(s3: S3Client, location: S3Location) -> str:
    return str(s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read().decode("utf-8"))


def iter_lines(s3: S3Client, location: S3Location, max_line_bytes: int | None = None) -> Iterator[bytes]:
    """Each line of an object without its newline or trailing CR, holding one chunk in memory at a time."""
    body = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"]
    pending = b""
    try:
        for chunk in body.iter_chunks(READ_CHUNK_BYTES):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.removesuffix(b"\r")
            if max_line_bytes is not None and len(pending) > max_line_bytes:
                raise LineTooLong(f"a line of {location.uri} is longer than {max_line_bytes} bytes")
        if pending:
            yield pending.removesuffix(b"\r")
    finally:
        body.close()


class S3ObjectWriter:
    """Writes one object in parts; nothing is visible under the key until commit().

    Small outputs are one PutObject. Larger ones become a multipart upload, so memory stays at one part;
    abort() throws the parts away, which is how a failed or stopped object leaves no partial output.
    """

    def __init__(
        self, s3: S3Client, location: S3Location, content_type: str, part_bytes: int = PART_BYTES
    ) -> None:
        self._s3 = s3
        self._location = location
        self._content_type = content_type
        self._part_bytes = part_bytes
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= self._part_bytes:
            self._upload_part()

    def commit(self) -> None:
        bucket, key = self._location.bucket, self._location.key
        if self._upload_id is None:
            self._s3.put_object(
                Bucket=bucket, Key=key, Body=bytes(self._buffer), ContentType=self._content_type
            )
        else:
            if self._buffer:
                self._upload_part()
            self._s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._buffer.clear()

    def abort(self) -> None:
        self._buffer.clear()
        if self._upload_id is not None:
            self._s3.abort_multipart_upload(
                Bucket=self._location.bucket, Key=self._location.key, UploadId=self._upload_id
            )
            self._upload_id = None

    def _upload_part(self) -> None:
        bucket, key = self._location.bucket, self._location.key
        if self._upload_id is None:
            created = self._s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=self._content_type)
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        response = self._s3.upload_part(
            Bucket=bucket, Key=key, UploadId=self._upload_id, PartNumber=number, Body=bytes(self._buffer)
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self._buffer.clear()
