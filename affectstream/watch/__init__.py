"""``affectstream watch mqtt://host[:port][/prefix]``: a live terminal view of every camera on
a broker, built on :class:`affectstream.client.Client` (live runs and replays alike)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from rich.console import Console, RenderableType
from rich.live import Live

from affectstream.client.stream import Client
from affectstream.config import MqttConfig
from affectstream.errors import ConfigError
from affectstream.watch.view import Link, render

REFRESH_S = 0.25

__all__ = ["render", "watch", "watch_command"]


async def watch(url: str, mqtt: MqttConfig, seconds: float | None,
                console: Console) -> None:
    """Draw the view until ``seconds`` have passed (None: until cancelled)."""
    async with Client(url, mqtt=mqtt, iterate=False) as client:
        def frame() -> RenderableType:
            link = Link(client.target.safe_url, client.connected, client.reconnects)
            return render(client.state, link, time.time())  # arrival times are wall clock

        loop = asyncio.get_running_loop()
        end = None if seconds is None else loop.time() + seconds
        # not transient: the last frame stays on screen (and is what a pipe gets)
        with Live(frame(), console=console, auto_refresh=False) as live:
            while end is None or loop.time() < end:
                left = REFRESH_S if end is None else end - loop.time()
                await asyncio.sleep(max(min(REFRESH_S, left), 0))
                live.update(frame(), refresh=True)


def watch_command(url: str, mqtt: MqttConfig, seconds: float | None,
                  console: Console | None = None) -> int:
    if seconds is not None and not seconds > 0:
        raise ConfigError(f"--seconds {seconds} must be above 0")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch normally ends
        asyncio.run(watch(url, mqtt, seconds, console or Console()))
    return 0
