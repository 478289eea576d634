"""Local files as an ObjectStore, so `batch-ingest` of `file` sources reads and dead-letters through the very
code that reads S3: bucket is a directory (empty for absolute keys), key a path under it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


class _Body:
    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        while piece := self._handle.read(size):
            yield piece

    def close(self) -> None:
        self._handle.close()


class LocalFiles:
    def get_object(self, *, Bucket: str, Key: str, Range: str) -> dict[str, Any]:
        start = int(Range.removeprefix("bytes=").split("-")[0])
        handle = _path(Bucket, Key).open("rb")
        handle.seek(start)
        return {"Body": _Body(handle)}

    def upload_fileobj(
        self, Fileobj: Any, Bucket: str, Key: str, ExtraArgs: Any = None, *, Config: Any = None
    ) -> None:
        path = _path(Bucket, Key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            shutil.copyfileobj(Fileobj, out)

    def delete_object(self, *, Bucket: str, Key: str) -> None:
        _path(Bucket, Key).unlink(missing_ok=True)


def _path(bucket: str, key: str) -> Path:
    return Path(bucket) / key if bucket else Path(key)
