"""The async client: typed messages of every camera under a prefix, from a broker, on aiomqtt.

One task owns the connection: it subscribes to ``{prefix}/#``, folds every message into
:attr:`Client.state` (so the state is complete whatever the filters) and queues the messages
that pass the filters for the iterator. A lost connection is retried with capped exponential
backoff; only a broker unreachable at the very start is an error (BrokerError), so a script
fails fast on a wrong address but survives a broker restart.

With ``session="NAME"`` the client connects as MQTT client id NAME with a persistent session
(``clean_session`` false): the broker keeps its subscription while it is away and queues the
QoS 1 messages (bursts, track events, emotions) published meanwhile, and delivers them on the
next connect, whether the client reconnects by itself or a script starts again with the same
NAME. A logger then misses no burst across a restart of itself or of the network. The broker
bounds that queue (mosquitto: ``max_queued_messages``, 1000 by default) and forgets sessions on
its own restart unless ``persistence true``. QoS 0 messages (log lines, stats) are not queued.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType

import aiomqtt

from affectstream.client.received import Received, UnreadableError, parse_received
from affectstream.client.state import State
from affectstream.clock import SYSTEM_CLOCK, Clock
from affectstream.config import MqttConfig
from affectstream.errors import BrokerError, SinkError
from affectstream.publish.mqtt import NO_DELAY, parse_mqtt_url, tls_context

log = logging.getLogger("affectstream.client")

FIRST_BACKOFF_S = 0.25
_END = object()
_SESSION = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""What a session name (the MQTT client id) may be: what every broker accepts, and readable in
its logs."""


@dataclass(frozen=True)
class Filters:
    """Which messages the iterator yields (empty: all); the state always sees everything."""

    cameras: frozenset[str] = frozenset()
    tracks: frozenset[int] = frozenset()
    kinds: frozenset[str] = frozenset()
    retained: bool = True
    """Also yield retained messages (the broker's last state, delivered on each connect)."""

    def passes(self, msg: Received) -> bool:
        return ((not self.cameras or msg.camera in self.cameras)
                and (not self.tracks or msg.track_id in self.tracks)
                and (not self.kinds or msg.kind in self.kinds)
                and (self.retained or not msg.retained)
                and msg.payload is not None)


class Client:
    """``async with Client("mqtt://host:1883/prefix") as c: async for msg in c: …``"""

    def __init__(self, url: str, *, cameras: Iterable[str] = (), tracks: Iterable[int] = (),
                 kinds: Iterable[str] = (), retained: bool = True, iterate: bool = True,
                 mqtt: MqttConfig | None = None, queue_size: int = 10_000,
                 backoff_max_s: float = 10.0, clock: Clock = SYSTEM_CLOCK,
                 session: str | None = None) -> None:
        self._cfg = mqtt or MqttConfig()
        if session is not None and not _SESSION.fullmatch(session):
            raise BrokerError(f"session name {session!r} is not usable as an MQTT client id; "
                              "use 1–64 letters, digits, '_', '.', ':' or '-'")
        try:
            self.target = parse_mqtt_url(url, self._cfg)
        except SinkError as exc:
            raise BrokerError(str(exc)) from exc
        self.filters = Filters(frozenset(cameras), frozenset(tracks), frozenset(kinds),
                               retained)
        self.state = State()
        self._iterate = iterate
        """False: nobody iterates (a view that reads only ``state``), so nothing is queued."""
        self.connected = False
        self.reconnects = 0
        self.dropped = 0
        """Messages dropped because the iterator fell more than ``queue_size`` behind."""
        self.unreadable = 0
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_size)
        self._backoff_max_s = backoff_max_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self.session = session
        """The persistent session's name (the MQTT client id), or None for a clean session."""
        self._id = session or f"affectstream-client-{secrets.token_hex(4)}"

    async def __aenter__(self) -> Client:
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"client {self.target.safe_url}")
        try:
            await self._first
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            self._put(_END)

    def __aiter__(self) -> Client:
        return self

    async def __anext__(self) -> Received:
        item = await self._queue.get()
        if item is _END:
            self._put(_END)  # every later call ends too
            raise StopAsyncIteration
        assert isinstance(item, Received)
        return item

    # -- connection task ----------------------------------------------------------------------
    def _mqtt(self) -> aiomqtt.Client:
        t = self.target
        return aiomqtt.Client(
            t.host, t.port, username=t.username, password=t.password, identifier=self._id,
            clean_session=self.session is None, keepalive=self._cfg.keepalive_s,
            timeout=self._cfg.connect_timeout_s,
            tls_context=tls_context(self._cfg) if t.tls else None, socket_options=NO_DELAY)

    async def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while True:
            try:
                async with self._mqtt() as client:
                    await client.subscribe(f"{self.target.prefix}/#", qos=1)
                    self._on_connected()
                    backoff = FIRST_BACKOFF_S
                    async for message in client.messages:
                        self._handle(message)
            except aiomqtt.MqttError as exc:
                self.connected = False
                if self._first is not None and not self._first.done():
                    self._first.set_exception(BrokerError(
                        f"cannot reach MQTT broker {self.target.safe_url} ({exc}); start the "
                        "broker or fix the host, port and credentials in the URL"))
                    return
                log.warning("MQTT %s: connection lost (%s); reconnecting in %.2f s",
                            self.target.safe_url, exc, backoff)
            await self._clock.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_max_s)
            self.reconnects += 1

    def _on_connected(self) -> None:
        self.connected = True
        if self._first is not None and not self._first.done():
            self._first.set_result(None)
        log.info("MQTT %s: subscribed to %s/#", self.target.safe_url, self.target.prefix)

    def _handle(self, message: aiomqtt.Message) -> None:
        raw = message.payload if isinstance(message.payload, bytes) \
            else str(message.payload or "").encode()
        try:
            msg = parse_received(self.target.prefix, str(message.topic), raw,
                                 bool(message.retain), self._clock.time())
        except UnreadableError as exc:
            self.unreadable += 1
            if self.unreadable == 1:
                log.warning("unreadable message (further ones only counted): %s", exc)
            return
        if msg is None:
            return
        self.state.apply(msg)
        if self._iterate and self.filters.passes(msg):
            self._put(msg)

    def _put(self, item: object) -> None:
        if self._queue.full():  # drop the oldest: the newest state matters most
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)
