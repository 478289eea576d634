"""In-memory stand-ins for the index and bulk calls osbatch makes, answering as OpenSearch answers them."""

from __future__ import annotations

import json
from typing import Any

from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
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
        self.down = False  # the node stopped: settings and refresh calls fail to connect

    def _connect(self) -> None:
        if self.down:
            # What opensearch-py raises when nothing listens on the node's port.
            refused = "Failed to establish a new connection: [Errno 111] Connection refused"
            raise OpenSearchConnectionError("N/A", refused, None)

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
        self._connect()
        own = {"number_of_replicas": "1", "number_of_shards": "1", **self.settings.get(index, {})}
        return {index: {"settings": {"index": own}}}

    def put_settings(self, *, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self._connect()
        own = self.settings.setdefault(index, {})
        for name, value in body["index"].items():
            if value is None:
                own.pop(name, None)  # null resets a setting to its default
            else:
                own[name] = str(value)
        return {"acknowledged": True}

    def refresh(self, *, index: str) -> dict[str, Any]:
        self._connect()
        self.refreshed.append(index)
        return {}

    def put_mapping(self, *, index: str, body: dict[str, Any]) -> dict[str, Any]:
        mapping = self.existing.setdefault(index, {})
        mapping.setdefault("properties", {}).update(body.get("properties", {}))
        return {"acknowledged": True}


class FakeClient:
    """The index calls, `count`, and, over a Cluster's documents, `mget`, `bulk` and `delete_by_query`
    with the bool filter / must_not of term queries osbatch sends (osbatch.incremental)."""

    def __init__(
        self, indices: FakeIndices | None = None, docs: int = 0, cluster: Cluster | None = None
    ) -> None:
        self.indices = indices or FakeIndices()
        self.docs = docs  # what count answers without a query: the searchable documents
        self.cluster = cluster if cluster is not None else Cluster()
        self.mgets: list[list[str]] = []

    def count(self, *, index: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if body is None:
            return {"count": self.docs}
        return {"count": len(self._matching(body))}

    def mget(
        self, *, index: str, body: dict[str, Any], params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self.mgets.append(list(body["ids"]))
        wanted = (params or {}).get("_source_includes")
        docs = []
        for doc_id in body["ids"]:
            doc = self.cluster.docs.get(doc_id)
            if doc is None:
                docs.append({"_index": index, "_id": doc_id, "found": False})
                continue
            source = {wanted: doc[wanted]} if wanted and wanted in doc else ({} if wanted else doc)
            docs.append({"_index": index, "_id": doc_id, "found": True, "_source": source})
        return {"docs": docs}

    def bulk(self, *, body: bytes, index: str | None = None) -> dict[str, Any]:
        return self.cluster.bulk(body=body, index=index)

    def delete_by_query(
        self, *, index: str, body: dict[str, Any], params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        matching = self._matching(body)
        for doc_id in matching:
            del self.cluster.docs[doc_id]
        return {"deleted": len(matching)}

    def search(self, *, index: str, body: dict[str, Any]) -> dict[str, Any]:
        """Ids only (`_source: false`), sorted by the one field of `sort`, paged by `search_after`."""
        assert body.get("_source") is False
        ((field, _order),) = body["sort"][0].items()
        found = sorted(
            ((self.cluster.docs[doc_id].get(field), doc_id) for doc_id in self._matching(body)),
            key=lambda pair: pair[0],
        )
        if "search_after" in body:
            found = [pair for pair in found if pair[0] > body["search_after"][0]]
        page = found[: body["size"]]
        return {"hits": {"hits": [{"_id": doc_id, "sort": [value]} for value, doc_id in page]}}

    def _matching(self, body: dict[str, Any]) -> list[str]:
        query = body["query"]["bool"]

        def holds(doc_id: str, doc: dict[str, Any], term: dict[str, Any]) -> bool:
            if "ids" in term:
                return doc_id in term["ids"]["values"]
            ((name, value),) = term["term"].items()
            return doc.get(name) == value

        return [
            doc_id
            for doc_id, doc in self.cluster.docs.items()
            if all(holds(doc_id, doc, term) for term in query.get("filter", []))
            and not any(holds(doc_id, doc, term) for term in query.get("must_not", []))
        ]


class ClusterHealth:
    """The cluster health API (`client.cluster.health`): every shard of these fakes is always active."""

    def __init__(self) -> None:
        self.health_waits: list[str] = []

    def health(self, *, index: str, **_: Any) -> dict[str, Any]:
        self.health_waits.append(index)
        return {"status": "green", "timed_out": False}


class Cluster(ClusterHealth):
    """Bulk `index` and `update` (+ `doc_as_upsert`) actions, applied as OpenSearch applies them: an update
    of a missing document without doc_as_upsert answers 404 document_missing_exception."""

    def __init__(self) -> None:
        super().__init__()
        self.docs: dict[str, dict[str, Any]] = {}

    def bulk(self, *, body: bytes, index: str | None = None) -> dict[str, Any]:
        lines = body.decode().splitlines()
        items = []
        for action_line, source_line in zip(lines[0::2], lines[1::2], strict=True):
            ((kind, meta),) = json.loads(action_line).items()
            source = json.loads(source_line)
            if kind == "update" and not source.get("doc_as_upsert") and meta["_id"] not in self.docs:
                missing = {
                    "type": "document_missing_exception",
                    "reason": f"[{meta['_id']}]: document missing",
                }
                items.append({kind: {"_id": meta["_id"], "status": 404, "error": missing}})
                continue
            if kind == "update":
                self.docs[meta["_id"]] = {**self.docs.get(meta["_id"], {}), **source["doc"]}
            else:
                self.docs[meta["_id"]] = source
            items.append({kind: {"_id": meta["_id"], "status": 200}})
        return {"errors": any(item[kind]["status"] >= 300 for item in items for kind in item), "items": items}


class KnnCluster:
    """A fake OpenSearch bulk endpoint with a 3-dimension knn_vector mapping: keeps documents by id and
    rejects vectors of another length the way OpenSearch does."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.requests = 0
        self.indices = FakeIndices()
        self.cluster = ClusterHealth()

    def bulk(self, *, body: bytes, index: str | None = None) -> dict[str, Any]:
        self.requests += 1
        lines = body.decode().splitlines()
        results = []
        for action, source in zip(lines[0::2], lines[1::2], strict=True):
            meta = json.loads(action)["index"]
            doc_id = meta["_id"]
            doc = json.loads(source)
            if meta.get("version_type") == "external_gte" and meta["version"] < self.versions.get(doc_id, 0):
                conflict = {"type": "version_conflict_engine_exception", "reason": f"[{doc_id}]: conflict"}
                results.append({"index": {"_id": doc_id, "status": 409, "error": conflict}})
                continue
            if "version" in meta:
                self.versions[doc_id] = meta["version"]
            vector = doc.get("chunk_embedding")
            if not isinstance(vector, list) or len(vector) != 3:
                error = {
                    "type": "mapper_parsing_exception",
                    "reason": (
                        "failed to parse field [chunk_embedding] of type [knn_vector] "
                        f"in document with id '{doc_id}'"
                    ),
                    "caused_by": {
                        "type": "illegal_argument_exception",
                        "reason": f"Vector dimension mismatch. Expected: 3, Actual: {len(vector)}",
                    },
                }
                results.append({"index": {"_id": doc_id, "status": 400, "error": error}})
            else:
                self.docs[doc_id] = doc
                results.append({"index": {"_id": doc_id, "status": 201}})
        return {"errors": any(r["index"]["status"] != 201 for r in results), "items": results}
