"""An in-memory stand-in for the index API calls osbatch makes, answering as OpenSearch answers them."""

from __future__ import annotations

from typing import Any

from opensearchpy.exceptions import RequestError


class FakeIndices:
    """indices.create answers 400 resource_already_exists_exception for an existing index, as OpenSearch does;
    get_mapping answers `{<index>: {"mappings": ...}}`."""

    def __init__(
        self, existing: dict[str, dict[str, Any]] | None = None, refuse: RequestError | None = None
    ) -> None:
        self.existing: dict[str, dict[str, Any]] = dict(existing or {})  # index -> its mappings
        self.refuse = refuse
        self.created: list[tuple[str, Any]] = []

    def create(self, *, index: str, body: Any = None) -> dict[str, Any]:
        if self.refuse is not None:
            raise self.refuse
        if index in self.existing:
            raise RequestError(
                400,
                "resource_already_exists_exception",
                {"error": {"type": "resource_already_exists_exception"}},
            )
        self.existing[index] = (body or {}).get("mappings", {})
        self.created.append((index, body))
        return {"acknowledged": True, "index": index}

    def get_mapping(self, *, index: str) -> dict[str, Any]:
        return {index: {"mappings": self.existing[index]}}


class FakeClient:
    def __init__(self, indices: FakeIndices | None = None) -> None:
        self.indices = indices or FakeIndices()
