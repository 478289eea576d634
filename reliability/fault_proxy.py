"""A TCP proxy that breaks the next bulk request the way networks do, for scenario e.

Toxiproxy (github.com/Shopify/toxiproxy) is the maintained tool for this, but its faults act on byte
streams, not on requests: "cut the response of the next `POST .../_bulk` after 100 bytes" needs a
request-aware proxy, and about a hundred lines of asyncio do it. It listens on a loopback port and forwards
to the node. Each armed fault is spent on the next connection that sends a bulk request:

- `reset`: the request is dropped and both sides are reset (RST) before a byte reaches the node: the client
  sees a connection error, and the node never saw the request;
- `timeout`: the request reaches the node, which applies it, but its response is swallowed: the client
  times out not knowing the outcome;
- `slow`: the response is held `slow_seconds` before it is passed on, then arrives whole;
- `cut`: the response is cut after its first `cut_bytes` bytes and the connection reset: the node applied
  the request, the client read a broken response.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

FAULTS = ("reset", "timeout", "slow", "cut")
BULK_REQUEST = b"/_bulk"
READ_SIZE = 65536


@dataclass
class FaultPlan:
    armed: deque[str] = field(default_factory=deque)
    slow_seconds: float = 1.0
    cut_bytes: int = 100
    applied: list[str] = field(default_factory=list)
    bulk_requests: int = 0  # bulk requests seen, faulted or not


class FaultProxy:
    def __init__(self, upstream_port: int, plan: FaultPlan | None = None) -> None:
        self.upstream_port = upstream_port
        self.plan = plan or FaultPlan()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm(self, *faults: str) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.plan.armed.extend(faults)

    @contextmanager
    def running(self) -> Iterator[FaultProxy]:
        started = threading.Event()
        thread = threading.Thread(target=self._serve, args=(started,), name="fault-proxy", daemon=True)
        thread.start()
        started.wait()
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join()

    async def _shutdown(self) -> None:
        """Stop listening and end every connection still open, so no task outlives the loop."""
        if self._server is not None:
            self._server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        fault: list[str | None] = [None]  # the fault this connection carries once a bulk request comes
        downstream = asyncio.ensure_future(self._pump_down(up_reader, writer, fault))
        try:
            while data := await reader.read(READ_SIZE):
                if data.startswith(b"POST ") and BULK_REQUEST in data.split(b"\r\n", 1)[0]:
                    self.plan.bulk_requests += 1
                    if self.plan.armed and fault[0] is None:
                        chosen = self.plan.armed.popleft()
                        fault[0] = chosen
                        self.plan.applied.append(chosen)
                        if chosen == "reset":
                            _reset(writer)
                            _reset(up_writer)
                            return
                up_writer.write(data)
                await up_writer.drain()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            return  # the proxy is shutting down: end quietly, not as a cancelled task asyncio complains of
        finally:
            downstream.cancel()
            for side in (writer, up_writer):
                with suppress(Exception):
                    side.close()

    async def _pump_down(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fault: list[str | None]
    ) -> None:
        with suppress(ConnectionError, OSError):
            while data := await up_reader.read(READ_SIZE):
                if fault[0] == "timeout":
                    continue  # the node answered; the client never hears it
                if fault[0] == "slow":
                    await asyncio.sleep(self.plan.slow_seconds)
                    fault[0] = None  # one slow response; the connection carries the next fault armed
                if fault[0] == "cut":
                    writer.write(data[: self.plan.cut_bytes])
                    await writer.drain()
                    _reset(writer)
                    return
                writer.write(data)
                await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, not FIN: SO_LINGER on, zero seconds."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
