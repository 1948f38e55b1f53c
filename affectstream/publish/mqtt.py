"""MQTT sink on aiomqtt (DESIGN §5, targets P2, R2, R5).

Perception never waits for the broker: :meth:`MqttSink.publish` only appends to a bounded
offline queue (drop-oldest beyond ``queue_size``, every drop counted). One connection task
drains the queue in order, removing a message only once the broker has taken it (PUBACK for
QoS 1), so a message in flight when the connection drops is sent again after the reconnect
(at-least-once). Reconnects use capped exponential backoff; the backoff waits and the
burst-to-broker latency go through the sink's :class:`~affectstream.clock.Clock`, so tests check
them without waiting. The availability topic carries, retained, the camera's last stated
availability on every connect (``online`` until the camera says otherwise: a camera still
being opened says ``offline``) and a retained last will ``offline``; the app publishes an
explicit ``offline`` at shutdown, which is drained like any other message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import ssl
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt

import affectstream.publish.homeassistant as ha
from affectstream.clock import SYSTEM_CLOCK, Clock
from affectstream.config import MqttConfig
from affectstream.errors import SinkError
from affectstream.percentiles import percentiles
from affectstream.publish.messages import Message
from affectstream.urls import redact_url

log = logging.getLogger("affectstream.publish.mqtt")

_FIRST_BACKOFF_S = 0.25
_AUTH_CODES = {4, 5, 134, 135}  # MQTT 3.1.1 bad credentials / not authorised, MQTT 5 equivalents
# Small messages go out at once: with Nagle's algorithm a message sent right after a QoS-0 one
# waits for the broker's delayed TCP ACK (about 40 ms on Linux), which breaks burst latency (P2)
# and replay pacing. paho leaves the socket as it is.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


@dataclass(frozen=True, slots=True)
class MqttTarget:
    """Where an ``mqtt://`` / ``mqtts://`` sink connects, from its URL and the ``mqtt`` config."""

    url: str
    tls: bool
    host: str
    port: int
    username: str | None
    password: str | None
    prefix: str
    embedded: bool = False

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)


def parse_mqtt_url(url: str, cfg: MqttConfig) -> MqttTarget:
    """``mqtt://[user:pass@]host[:port][/prefix]``, ``mqtts://…`` or ``mqtt://embedded``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SinkError(f"invalid MQTT URL {redact_url(url)} ({exc}); use "
                        "mqtt://[user:pass@]host[:port][/prefix]") from None
    tls = parts.scheme == "mqtts"
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise SinkError(f"invalid MQTT URL {redact_url(url)}; use "
                        "mqtt://[user:pass@]host[:port][/prefix] or mqtts://…")
    prefix = parts.path.strip("/") or cfg.prefix
    if any(c in prefix for c in "#+"):
        raise SinkError(f"MQTT prefix '{prefix}' contains a wildcard (# or +); choose a plain one")
    password = unquote(parts.password) if parts.password is not None else (
        cfg.password.get_secret_value() if cfg.password is not None else None)
    return MqttTarget(
        url=url, tls=tls, host=parts.hostname, port=port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else cfg.username,
        password=password, prefix=prefix,
        embedded=parts.hostname == "embedded" and not tls,
    )


def tls_context(cfg: MqttConfig) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(
            cafile=str(cfg.ca_file) if cfg.ca_file is not None else None)
        if cfg.cert_file is not None:
            ctx.load_cert_chain(str(cfg.cert_file),
                                str(cfg.key_file) if cfg.key_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise SinkError(f"cannot load the MQTT TLS files ({exc}); check mqtt.ca_file, "
                        "mqtt.cert_file and mqtt.key_file") from None
    ctx.check_hostname = not cfg.tls_insecure
    return ctx


def _fatal_reason(exc: aiomqtt.MqttError, target: MqttTarget) -> str | None:
    """A one-line cause and fix when retrying cannot help (credentials, certificates)."""
    text = str(exc)
    rc = getattr(exc, "rc", None)
    code = getattr(rc, "value", rc)
    if isinstance(exc, aiomqtt.MqttCodeError) and code in _AUTH_CODES:
        return (f"MQTT broker {target.safe_url} refused the login ({text}); check the user "
                "name and password (in the URL or mqtt.username / mqtt.password)")
    lowered = text.lower()
    if "certificate" in lowered or "hostname mismatch" in lowered:
        return (f"TLS to MQTT broker {target.safe_url} failed: the server certificate is not "
                f"trusted ({text}); set mqtt.ca_file to the CA that signed it")
    return None


class MqttSink:
    def __init__(self, url: str, cfg: MqttConfig, camera: str, version: str, *,
                 clock: Clock = SYSTEM_CLOCK, cameras: Sequence[str] = ()) -> None:
        """``cameras``: every camera of the process (each has its own sink): their Home
        Assistant devices are never removed as stale, and a configured client id gets the
        camera's id appended so the connections do not take each other's place."""
        self.target = parse_mqtt_url(url, cfg)
        self._cameras = list(cameras) or [camera]
        self.name = self.target.safe_url
        self._cfg = cfg
        self._camera = camera
        self._version = version
        self._clock = clock
        self._client_id = (f"{cfg.client_id}-{camera}" if cfg.client_id and len(self._cameras) > 1
                           else cfg.client_id or f"affectstream-{camera}-{secrets.token_hex(3)}")
        self._availability = f"{self.target.prefix}/{camera}/availability"
        self._available = "online"
        """What the camera last said of itself: (re)connects announce it, so a camera still
        being opened reads offline after a broker restart too."""
        self._queue: deque[Message] = deque()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self._broker: Any = None
        self.connected = False
        self.dropped = 0
        self.sent = 0
        self.reconnects = 0
        self.burst_latency_ms: deque[float] = deque(maxlen=1000)

    # -- Sink interface -----------------------------------------------------------------------
    async def start(self) -> None:
        if self.target.embedded:
            await self._start_embedded()
        self._tls = tls_context(self._cfg) if self.target.tls else None
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"mqtt {self.name}")
        await self._first  # raises SinkError for bad credentials / untrusted certificates

    async def publish(self, message: Message) -> None:
        if message.topic == f"{self._camera}/availability" and isinstance(message.payload, str):
            self._available = message.payload
        if len(self._queue) >= self._cfg.queue_size:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(message)
        self._wake.set()

    async def close(self) -> None:
        """Deliver what is queued while connected (bounded wait), then disconnect."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            budget = 2 * self._cfg.connect_timeout_s if self.connected else 0.5
            try:
                await asyncio.wait_for(asyncio.shield(self._task), budget)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            if self._queue:
                log.warning("MQTT %s: %d message(s) not delivered at shutdown (broker "
                            "unreachable)", self.name, len(self._queue))
        if self._broker is not None:
            await self._broker.stop()

    def stats(self) -> dict[str, Any]:
        return {"queued": len(self._queue), "dropped": self.dropped,
                "connected": self.connected, "sent": self.sent, "reconnects": self.reconnects,
                "burst_to_broker_ms": percentiles(self.burst_latency_ms)}

    # -- connection task ----------------------------------------------------------------------
    async def _start_embedded(self) -> None:
        from affectstream.publish.broker import EmbeddedBroker

        self._broker = EmbeddedBroker()
        await self._broker.start()
        self.target = parse_mqtt_url(
            f"mqtt://{self._broker.host}:{self._broker.port}/{self.target.prefix}", self._cfg)
        self.name = f"mqtt://embedded ({self._broker.host}:{self._broker.port})"
        print(f"embedded MQTT broker on {self._broker.host}:{self._broker.port}; subscribe "
              f"with: {self._broker.subscribe_hint(self.target.prefix)}", file=sys.stderr)

    def _client(self) -> aiomqtt.Client:
        t = self.target
        return aiomqtt.Client(
            t.host, t.port, username=t.username, password=t.password,
            identifier=self._client_id, keepalive=self._cfg.keepalive_s,
            timeout=self._cfg.connect_timeout_s, tls_context=self._tls,
            will=aiomqtt.Will(self._availability, "offline", qos=1, retain=True),
            socket_options=NO_DELAY,
        )

    async def _run(self) -> None:
        backoff = _FIRST_BACKOFF_S
        while True:
            try:
                async with self._client() as client:
                    self._on_connected()
                    backoff = _FIRST_BACKOFF_S
                    await self._session(client)
                    return
            except aiomqtt.MqttError as exc:
                self.connected = False
                if self._give_up(exc):
                    return
            if self._stopping.is_set() or await self._backoff(backoff):
                return
            backoff = min(backoff * 2, self._cfg.reconnect_backoff_max_s)
            self.reconnects += 1

    async def _backoff(self, seconds: float) -> bool:
        """Wait ``seconds`` on the clock, cut short by close(); True when close() cut it."""
        pause = asyncio.ensure_future(self._clock.sleep(seconds))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({pause, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pause, stop):
                task.cancel()
            await asyncio.gather(pause, stop, return_exceptions=True)
        return self._stopping.is_set()

    def _on_connected(self) -> None:
        self.connected = True
        if self._first is not None and not self._first.done():
            self._first.set_result(None)
        log.info("MQTT %s connected", self.name)

    def _give_up(self, exc: aiomqtt.MqttError) -> bool:
        """Handle a failed or lost connection; True when the task should end."""
        fatal = _fatal_reason(exc, self.target)
        first = self._first
        if first is not None and not first.done():
            if fatal and not self._cfg.retry_on_auth_failure:
                first.set_exception(SinkError(fatal))
                return True
            first.set_result(None)  # start() returns; messages queue until the broker is back
            log.warning("MQTT %s unreachable (%s); queuing messages and retrying", self.name,
                        fatal or exc)
        else:
            log.warning("MQTT %s: connection lost (%s); reconnecting", self.name, fatal or exc)
        return False

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.publish(self._availability, self._available, qos=1, retain=True)
        hass = self._cfg.homeassistant
        if hass.enabled:
            await self._announce(client)
            await client.subscribe(hass.status_topic, qos=1)
            if hass.remove_stale:
                await client.subscribe(f"{hass.discovery_prefix}/device/+/config", qos=1)
        listener = asyncio.create_task(self._listen(client))
        try:
            await self._drain(client, listener)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _drain(self, client: aiomqtt.Client, listener: asyncio.Task[None]) -> None:
        """Send queued messages in order until stopping with an empty queue; raise
        MqttError when the connection is lost (the listener ends)."""
        while True:
            if not self._queue:
                if self._stopping.is_set():
                    return
                self._wake.clear()
                waiter = asyncio.create_task(self._wake.wait())
                await asyncio.wait({waiter, listener}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if listener.done():
                    raise aiomqtt.MqttError("connection lost")
                continue
            message = self._queue[0]
            topic = f"{self.target.prefix}/{message.topic}"
            payload = message.payload if isinstance(message.payload, str) \
                else json.dumps(message.payload, ensure_ascii=False)
            await client.publish(topic, payload, qos=message.qos, retain=message.retain,
                                 timeout=self._cfg.connect_timeout_s)
            if self._queue and self._queue[0] is message:  # not dropped meanwhile
                self._queue.popleft()
            self.sent += 1
            self._note_latency(message)

    def _note_latency(self, message: Message) -> None:
        if isinstance(message.payload, dict) and message.topic.endswith("/bursts"):
            ts = message.payload.get("ts")
            if isinstance(ts, (int, float)):
                self.burst_latency_ms.append((self._clock.time() - ts) * 1000)

    async def _listen(self, client: aiomqtt.Client) -> None:
        """Incoming messages (Home Assistant's status and retained discovery configs); ends
        with MqttError when the connection drops, which is how _drain notices it."""
        hass = self._cfg.homeassistant
        async for msg in client.messages:
            topic = str(msg.topic)
            raw = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload).encode()
            if hass.enabled and ha.is_ha_online(topic, raw, self._ha_cfg()):
                await self._announce(client)
            elif hass.enabled and hass.remove_stale and msg.retain and raw and \
                    ha.stale_cameras([topic], self._ha_cfg(), self.target.prefix, self._cameras):
                await client.publish(topic, "", qos=1, retain=True)  # a removed camera

    def _ha_cfg(self) -> ha.DiscoveryConfig:
        hass = self._cfg.homeassistant
        return ha.DiscoveryConfig(hass.discovery_prefix, hass.status_topic)

    async def _announce(self, client: aiomqtt.Client) -> None:
        topic, payload, qos, retain = ha.discovery_message(
            self._ha_cfg(), self.target.prefix, self._camera, self._version)
        await client.publish(topic, payload, qos=qos, retain=retain)
