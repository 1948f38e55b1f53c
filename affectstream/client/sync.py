"""A small blocking wrapper around :class:`~affectstream.client.stream.Client` for scripts.

It runs the async client on a private event loop that turns only while the script waits for
the next message; the MQTT connection's keepalive is answered then too, and a script that
pauses longer than 1.5 × keepalive is reconnected by the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from affectstream.client.received import Received
from affectstream.client.state import State
from affectstream.client.stream import Client


class SyncClient:
    """``with SyncClient("mqtt://host:1883", kinds=["burst"]) as c: for msg in c.messages(): …``
    Takes the same keyword arguments as :class:`Client`."""

    def __init__(self, url: str, **options: Any) -> None:
        self._runner = asyncio.Runner()
        self._options = options
        self._url = url
        self._client: Client | None = None

    def __enter__(self) -> SyncClient:
        self._client = Client(self._url, **self._options)  # needs no running loop
        try:
            self._runner.run(self._client.__aenter__())
        except BaseException:
            self._runner.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._client is not None:
            self._runner.run(self._client.close())
        self._runner.close()

    @property
    def state(self) -> State:
        return self._live().state

    def messages(self, idle_timeout_s: float | None = None) -> Iterator[Received]:
        """The messages as they come; ends after ``idle_timeout_s`` without one (None: never)."""
        client = self._live()
        while True:
            try:
                yield self._runner.run(asyncio.wait_for(anext(client), idle_timeout_s))
            except (StopAsyncIteration, TimeoutError):
                return

    def _live(self) -> Client:
        if self._client is None:
            raise RuntimeError("use SyncClient in a with block")
        return self._client
