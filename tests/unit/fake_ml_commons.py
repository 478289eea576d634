"""An in-memory ML Commons and search pipeline API, answering osbatch.search.ml's calls as the node does.

It keeps the node's rules that provisioning depends on: a connector used by a deployed model cannot be
updated, register and deploy are tasks, and a model search finds models by exact name.
"""

from __future__ import annotations

import itertools
from typing import Any

from opensearchpy.exceptions import NotFoundError, RequestError

from tests.unit.fake_opensearch import ClusterHealth, FakeIndices


class FakeMlTransport:
    def __init__(self) -> None:
        self.connectors: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self._ids = (f"id{n}" for n in itertools.count(1))

    def writes(self) -> list[tuple[str, str]]:
        return [
            (method, path) for method, path in self.calls if method != "GET" and not path.endswith("_search")
        ]

    def perform_request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        self.calls.append((method, path))
        parts = path.strip("/").split("/")
        if path == "/_plugins/_ml/models/_search":
            name = body["query"]["bool"]["must"][0]["term"]["name.keyword"]
            hits = [{"_id": mid, "_source": m} for mid, m in self.models.items() if m["name"] == name]
            return {"hits": {"hits": hits[::-1]}}
        if path == "/_plugins/_ml/connectors/_create":
            connector_id = next(self._ids)
            self.connectors[connector_id] = body
            return {"connector_id": connector_id}
        if parts[:3] == ["_plugins", "_ml", "connectors"] and method == "PUT":
            users = [m for m in self.models.values() if m.get("connector_id") == parts[3]]
            if any(m["model_state"] == "DEPLOYED" for m in users):
                raise RequestError(400, "illegal_argument_exception", "models are still using this connector")
            self.connectors[parts[3]] = body
            return {"result": "updated"}
        if path == "/_plugins/_ml/models/_register":
            model_id = next(self._ids)
            self.models[model_id] = {**body, "model_state": "REGISTERED"}
            return self._task({"model_id": model_id})
        if parts[:3] == ["_plugins", "_ml", "models"]:
            model_id = parts[3]
            if len(parts) == 5 and parts[4] == "_deploy":
                self.models[model_id]["model_state"] = "DEPLOYED"
                return self._task({"model_id": model_id})
            if len(parts) == 5 and parts[4] == "_undeploy":
                self.models[model_id]["model_state"] = "UNDEPLOYED"
                return {}
            if method == "PUT":
                self.models[model_id].update(body)
                return {"result": "updated"}
            if method == "DELETE":
                del self.models[model_id]
                return {"result": "deleted"}
        if parts[:3] == ["_plugins", "_ml", "tasks"]:
            return self.tasks[parts[3]]
        if parts[:2] == ["_search", "pipeline"]:
            if method == "PUT":
                self.pipelines[parts[2]] = body
                return {"acknowledged": True}
            if parts[2] not in self.pipelines:
                raise NotFoundError(404, "resource_not_found_exception", {})
            return {parts[2]: self.pipelines[parts[2]]}
        raise AssertionError(f"unexpected call {method} {path}")

    def _task(self, result: dict[str, Any]) -> dict[str, Any]:
        task_id = next(self._ids)
        self.tasks[task_id] = {"state": "COMPLETED", **result}
        return {"task_id": task_id, "status": "CREATED"}


class FakeSearchClient:
    def __init__(self) -> None:
        self.indices = FakeIndices()
        self.cluster = ClusterHealth()
        self.transport = FakeMlTransport()
