"""The ML Commons and search pipeline REST calls provisioning makes, on an injected OpenSearch client.

Registering and deploying are asynchronous tasks on the node; these calls wait for them, polling the task
with an injected sleep so tests run instantly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opensearchpy.exceptions import NotFoundError, TransportError

from osbatch.retry import Backoff, Hooks, after_attempts, retrying

ML = "/_plugins/_ml"
# The paths provisioning calls; infra/search_provisioning.py grants exactly these.
CONNECTORS = f"{ML}/connectors"
MODELS = f"{ML}/models"
TASKS = f"{ML}/tasks"
SEARCH_PIPELINE = "/_search/pipeline"
TASK_DONE = {"COMPLETED"}
TASK_FAILED = {"FAILED", "COMPLETED_WITH_ERROR"}
DEPLOYED = "DEPLOYED"
# A node (or domain) that has just started answers 503 while ML Commons' system indices recover
# (no_shard_available_action_exception on .plugins-ml-config): retried, bounded, with jittered backoff.
UNAVAILABLE_RETRIES = 8
UNAVAILABLE_BACKOFF = Backoff(initial=0.5, cap=30.0, low=0.5, high=1.0)


class MlCommonsError(RuntimeError):
    """An ML Commons task failed or never finished; the message has the node's own reason."""


class MlCommons:
    def __init__(
        self,
        client: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = 1.0,
        task_timeout_seconds: float = 600,
    ) -> None:
        self._client = client
        self._sleep = sleep
        self._poll = poll_seconds
        self._timeout = task_timeout_seconds

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        tries = retrying(
            UNAVAILABLE_BACKOFF,
            after_attempts(UNAVAILABLE_RETRIES + 1),
            retry_on=lambda error: isinstance(error, TransportError) and error.status_code == 503,
            hooks=Hooks(sleep=self._sleep),
        )
        for attempt in tries:
            with attempt:
                return self._client.transport.perform_request(method, path, body=body)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def find_model(self, name: str) -> dict[str, Any] | None:
        """The newest model registered under `name` (its chunks, for local models, are not models)."""
        query = {
            "size": 10,
            "query": {
                "bool": {
                    "must": [{"term": {"name.keyword": name}}],
                    "must_not": [{"exists": {"field": "chunk_number"}}],
                }
            },
            "sort": [{"created_time": {"order": "desc"}}],
        }
        try:
            response = self._call("POST", f"{MODELS}/_search", query)
        except NotFoundError:  # no model was ever registered: the model index does not exist yet
            return None
        hits = response.get("hits", {}).get("hits", [])
        return {"model_id": hits[0]["_id"], **hits[0]["_source"]} if hits else None

    def get_model(self, model_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"{MODELS}/{model_id}"))

    def create_connector(self, body: dict[str, Any]) -> str:
        return str(self._call("POST", f"{CONNECTORS}/_create", body)["connector_id"])

    def update_connector(self, connector_id: str, body: dict[str, Any]) -> None:
        self._call("PUT", f"{CONNECTORS}/{connector_id}", body)

    def register(self, body: dict[str, Any]) -> str:
        """Register a model and wait until it is registered; its id."""
        response = self._call("POST", f"{MODELS}/_register", body)
        if response.get("model_id") and response.get("status") != "CREATED":
            return str(response["model_id"])
        task = self.wait(str(response["task_id"]), f"registering model {body.get('name')}")
        return str(task["model_id"])

    def update_model(self, model_id: str, body: dict[str, Any]) -> None:
        self._call("PUT", f"{MODELS}/{model_id}", body)

    def deploy(self, model_id: str) -> None:
        response = self._call("POST", f"{MODELS}/{model_id}/_deploy")
        self.wait(str(response["task_id"]), f"deploying model {model_id}")

    def undeploy(self, model_id: str) -> None:
        self._call("POST", f"{MODELS}/{model_id}/_undeploy")

    def delete_model(self, model_id: str) -> None:
        self._call("DELETE", f"{MODELS}/{model_id}")

    def wait(self, task_id: str, what: str) -> dict[str, Any]:
        waited = 0.0
        while True:
            task: dict[str, Any] = self._call("GET", f"{TASKS}/{task_id}")
            state = task.get("state")
            if state in TASK_DONE:
                return task
            if state in TASK_FAILED:
                raise MlCommonsError(f"{what} failed: {task.get('error') or state}")
            if waited >= self._timeout:
                raise MlCommonsError(f"{what}: task {task_id} still {state} after {self._timeout:.0f}s")
            self._sleep(self._poll)
            waited += self._poll

    # --- batch inference (backends/ml_commons.py) ---

    def batch_predict(self, model_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """`{"task_id", "status", "remote_job"}`: the task ML Commons created for the remote job."""
        return dict(self._call("POST", f"{MODELS}/{model_id}/_batch_predict", {"parameters": parameters}))

    def get_task(self, task_id: str) -> dict[str, Any]:
        """For a batch task, ML Commons calls the connector's status action and merges it into remote_job."""
        return dict(self._call("GET", f"{TASKS}/{task_id}"))

    def cancel_task(self, task_id: str) -> None:
        self._call("POST", f"{TASKS}/{task_id}/_cancel")

    def batch_tasks(self, model_id: str, size: int = 100) -> list[dict[str, Any]]:
        """The model's batch tasks, newest first, each with its `task_id`."""
        query = {
            "size": size,
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"model_id": model_id}},
                        {"term": {"task_type": "BATCH_PREDICTION"}},
                    ]
                }
            },
            "sort": [{"create_time": {"order": "desc"}}],
        }
        try:
            response = self._call("POST", f"{TASKS}/_search", query)
        except NotFoundError:  # no task was ever created: the task index does not exist yet
            return []
        return [{"task_id": hit["_id"], **hit["_source"]} for hit in response.get("hits", {}).get("hits", [])]

    def get_search_pipeline(self, name: str) -> dict[str, Any] | None:
        try:
            response = self._call("GET", f"{SEARCH_PIPELINE}/{name}")
        except NotFoundError:
            return None
        found = response.get(name)
        return dict(found) if isinstance(found, dict) else None

    def put_search_pipeline(self, name: str, body: dict[str, Any]) -> None:
        self._call("PUT", f"{SEARCH_PIPELINE}/{name}", body)
