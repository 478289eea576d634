"""`Job State Change` events on EventBridge, so other systems can react to finished jobs."""

from __future__ import annotations

import json
from typing import Any

SOURCE = "osbatch"
DETAIL_TYPE = "Job State Change"


class JobEvents:
    def __init__(self, events: Any, bus_name: str) -> None:
        self._events, self._bus = events, bus_name

    def publish(self, detail: dict[str, Any]) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(detail),
                    "EventBusName": self._bus,
                    "Resources": [],
                }
            ]
        )
        # PutEvents reports per-entry failures in a 200 response; an unnoticed one is a lost event.
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise RuntimeError(f"PutEvents failed: {entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
