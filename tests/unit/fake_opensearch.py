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
        # index -> its own index settings, as strings the way OpenSearch returns them (defaults left out)
        self.settings: dict[str, dict[str, Any]] = {}
        self.refreshed: list[str] = []

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

    def exists(self, *, index: str) -> bool:
        return index in self.existing

    def get_settings(self, *, index: str) -> dict[str, Any]:
        own = {"number_of_replicas": "1", "number_of_shards": "1", **self.settings.get(index, {})}
        return {index: {"settings": {"index": own}}}

    def put_settings(self, *, index: str, body: dict[str, Any]) -> dict[str, Any]:
        own = self.settings.setdefault(index, {})
        for name, value in body["index"].items():
            if value is None:
                own.pop(name, None)  # null resets a setting to its default
            else:
                own[name] = str(value)
        return {"acknowledged": True}

    def refresh(self, *, index: str) -> dict[str, Any]:
        self.refreshed.append(index)
        return {}


class FakeClient:
    def __init__(self, indices: FakeIndices | None = None, docs: int = 0) -> None:
        self.indices = indices or FakeIndices()
        self.docs = docs  # what count answers: the searchable documents

    def count(self, *, index: str) -> dict[str, Any]:
        return {"count": self.docs}
