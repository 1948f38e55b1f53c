"""``/events``: server-sent events carrying the same ``{"topic", "payload"}`` messages as the
sinks (plus named ``frame`` events: the face boxes of the latest annotated video frame).

Each client has a bounded queue: a browser that reads slower than the run publishes loses its
oldest messages (counted), and the run never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence

from aiohttp import web

HEARTBEAT_S = 15.0
"""A comment line this often keeps proxies from closing an idle stream."""


class Client:
    def __init__(self, camera: str | None, size: int) -> None:
        self.camera = camera
        self.queue: deque[bytes] = deque(maxlen=size)
        self.wake = asyncio.Event()
        self.dropped = 0

    def push(self, chunk: bytes) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1  # the deque drops the oldest
        self.queue.append(chunk)
        self.wake.set()


class Broadcaster:
    """Every connected /events client, each with its own bounded queue. Loop only."""

    def __init__(self, queue_size: int, on_drop: Callable[[int], None] = lambda n: None) -> None:
        self._size = queue_size
        self._clients: set[Client] = set()
        self._on_drop = on_drop
        self.dropped = 0
        self.closing = False

    def publish(self, camera: str | None, data: str, event: str | None = None) -> None:
        """``data`` (one JSON document) to every client of ``camera`` (None: every client)."""
        chunk = _format(data, event)
        for client in self._clients:
            if camera is None or client.camera is None or client.camera == camera:
                before = client.dropped
                client.push(chunk)
                if client.dropped != before:
                    self.dropped += 1
                    self._on_drop(1)

    def queued(self) -> int:
        return sum(len(c.queue) for c in self._clients)

    def clients(self, camera: str | None = None) -> int:
        return sum(camera is None or c.camera == camera for c in self._clients)

    def connect(self, camera: str | None, replay: Sequence[str] = ()) -> Client:
        """A new client of ``camera`` (None: every camera), its queue starting with
        ``replay``."""
        client = Client(camera, max(self._size, len(replay)))
        for data in replay:
            client.push(_format(data, None))
        self._clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self._clients.discard(client)

    def close(self) -> None:
        """Ends every stream (the server is closing)."""
        self.closing = True
        for client in self._clients:
            client.wake.set()

    async def stream(self, request: web.Request, camera: str | None,
                     replay: list[str]) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no"})  # nginx would otherwise buffer the stream
        await response.prepare(request)
        client = self.connect(camera, replay)
        try:
            await _pump(response, client, lambda: self.closing)
        except (ConnectionResetError, ConnectionError):
            pass  # the browser went away
        finally:
            self.disconnect(client)
        return response


async def _pump(response: web.StreamResponse, client: Client,
                closing: Callable[[], bool]) -> None:
    while not closing():
        if not client.queue:
            client.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.wake.wait(), HEARTBEAT_S)
            if not client.queue:
                await response.write(b": keep-alive\n\n")
                continue
        batch = b"".join(client.queue)
        client.queue.clear()
        await response.write(batch)


def _format(data: str, event: str | None) -> bytes:
    # JSON from json.dumps has no raw newlines, so one data: line per message
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()
