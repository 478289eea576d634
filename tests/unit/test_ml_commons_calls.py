"""ML Commons calls on a node that is still starting: 503s are retried, bounded; other errors are not."""

from __future__ import annotations

from typing import Any

import pytest
from opensearchpy.exceptions import RequestError, TransportError

from osbatch.search.ml import UNAVAILABLE_RETRIES, MlCommons

RECOVERING = TransportError(503, "no_shard_available_action_exception", {"status": 503})


class ScriptedTransport:
    """Raises the scripted errors in turn, then answers."""

    def __init__(self, errors: list[Exception], answer: dict[str, Any]) -> None:
        self.errors, self.answer, self.calls = list(errors), answer, 0

    def perform_request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


class Client:
    def __init__(self, transport: ScriptedTransport) -> None:
        self.transport = transport


def test_a_recovering_node_is_waited_for() -> None:
    # Given a node whose ML config index is still recovering for two requests
    transport = ScriptedTransport([RECOVERING, RECOVERING], {"connector_id": "c1"})
    sleeps: list[float] = []
    # When a connector is created
    connector = MlCommons(Client(transport), sleep=sleeps.append).create_connector({"name": "x"})
    # Then it is created on the third try, after two growing, jittered waits
    assert connector == "c1" and transport.calls == 3
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_a_node_that_stays_unavailable_fails_after_the_bounded_retries() -> None:
    transport = ScriptedTransport([RECOVERING] * (UNAVAILABLE_RETRIES + 1), {"connector_id": "never"})
    sleeps: list[float] = []
    with pytest.raises(TransportError) as raised:
        MlCommons(Client(transport), sleep=sleeps.append).create_connector({"name": "x"})
    assert raised.value.status_code == 503
    assert transport.calls == UNAVAILABLE_RETRIES + 1 and len(sleeps) == UNAVAILABLE_RETRIES
    assert max(sleeps) <= 30.0


def test_a_refused_request_is_not_retried() -> None:
    # Given a request the node refuses for good (a bad connector body)
    refusal = RequestError(400, "illegal_argument_exception", {"status": 400})
    transport = ScriptedTransport([refusal], {})
    sleeps: list[float] = []
    # When it is sent / Then the refusal surfaces at once
    with pytest.raises(RequestError):
        MlCommons(Client(transport), sleep=sleeps.append).create_connector({"name": "x"})
    assert transport.calls == 1 and sleeps == []
