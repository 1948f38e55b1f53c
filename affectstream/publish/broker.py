"""An in-process MQTT broker for the demo and for users without one (optional extra ``broker``).

It wraps amqtt, imported lazily so that the core package does not depend on it. The broker
listens on loopback only by default: it has no authentication, and R5 keeps everything this
program serves private unless the user says otherwise.
"""

from __future__ import annotations

import importlib
import logging
import shlex
import socket
from typing import Any

from affectstream.errors import SinkError

log = logging.getLogger("affectstream.publish")

_MISSING = "the embedded MQTT broker needs amqtt; pip install 'affectstream[broker]'"
# amqtt logs every connection at INFO and its state machine library (transitions) every state
# change; at the CLI's default level that would drown our own output.
_CHATTY_LOGGERS = ("amqtt", "transitions")
_PORT_RETRIES = 3


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _probe_port(host: str, port: int) -> int:
    """Bind ``host:port`` once (0: any free port) and return the port, or raise OSError.

    amqtt cannot report the port it bound, so for port 0 we pick one here; for a given port
    this turns "address in use" into our one-line error instead of amqtt's traceback.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # Same option asyncio's server uses, so a port in TIME_WAIT counts as free for both.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return int(s.getsockname()[1])


def _quiet_amqtt() -> None:
    for name in _CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:  # leave a level the user chose alone
            logger.setLevel(logging.WARNING)


def _retained_only_on_subscribe(broker: Any) -> None:
    """Send retained messages only to sessions that subscribed to a matching filter.

    amqtt 0.12 also pushes them, at QoS 0, to *every* client that connects, for every filter
    *any* client holds: our publisher would receive unsolicited messages (which aiomqtt queues
    forever) and a late subscriber would get each retained message twice. MQTT 3.1.1 §3.3.1.3
    only sends them when a subscription is made, which is what this guard restores.
    """
    original = getattr(broker, "_publish_retained_messages_for_subscription", None)
    subscriptions = getattr(broker, "_subscriptions", None)
    if original is None or not isinstance(subscriptions, dict):
        log.debug("amqtt internals changed; retained messages left as amqtt sends them")
        return

    async def guarded(subscription: tuple[str, int], session: Any) -> None:
        holders = subscriptions.get(subscription[0], ())
        if any(held.client_id == session.client_id for held, _ in holders):
            await original(subscription, session)

    broker._publish_retained_messages_for_subscription = guarded


class EmbeddedBroker:
    """An in-process amqtt broker on 127.0.0.1 on a free port (optional extra ``broker``).

    Anonymous, MQTT 3.1.1, QoS 0–2 and retained messages, nothing persisted. ``start()`` after
    ``stop()`` listens on the same port again, so connected clients can reconnect.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise SinkError(f"embedded MQTT broker port {port} is out of range; use 1-65535, "
                            "or 0 for any free port")
        self.host = host
        self.port = port
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{_bind_address(self.host, self.port)}"

    @property
    def running(self) -> bool:
        return self._broker is not None

    def subscribe_hint(self, prefix: str = "affectstream") -> str:
        """A shell command that prints every message the broker carries under ``prefix``."""
        return (f"mosquitto_sub -h {self.host} -p {self.port} -t {shlex.quote(prefix + '/#')} "
                "-v")

    async def start(self) -> None:
        """Listen; raise SinkError if amqtt is missing or the port cannot be bound."""
        if self._broker is not None:
            return
        try:
            amqtt_broker = importlib.import_module("amqtt.broker")
        except ImportError as exc:
            raise SinkError(_MISSING) from exc
        _quiet_amqtt()
        # A port picked by _probe_port may be taken again before amqtt binds it: retry then.
        attempts = _PORT_RETRIES if self.port == 0 else 1
        for attempt in range(attempts):
            port = self._free_port()
            broker = amqtt_broker.Broker(self._config(port))
            _retained_only_on_subscribe(broker)
            try:
                await self._start_silently(broker)
            except Exception as exc:
                if attempt + 1 < attempts:
                    continue
                raise SinkError(f"the embedded MQTT broker cannot listen on "
                                f"{_bind_address(self.host, port)} ({exc}); choose another "
                                "port") from exc
            self.port, self._broker = port, broker
            log.info("embedded MQTT broker listening on %s", self.url)
            return

    async def stop(self) -> None:
        """Disconnect every client and close the port; calling it again does nothing."""
        broker, self._broker = self._broker, None
        if broker is None:
            return
        try:
            await broker.shutdown()
        except Exception as exc:
            # Stopping is best effort: the listener is gone either way once the loop ends, and a
            # failure here must not hide whatever the caller is shutting down for.
            log.warning("embedded MQTT broker did not stop cleanly: %s", exc)

    def _free_port(self) -> int:
        try:
            return _probe_port(self.host, self.port)
        except OSError as exc:
            raise SinkError(f"the embedded MQTT broker cannot listen on "
                            f"{_bind_address(self.host, self.port)} ({exc.strerror}); choose "
                            "another port, or 0 for any free one") from exc

    def _config(self, port: int) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": _bind_address(self.host, port)}},
            # Listing the plugins replaces amqtt's defaults, which add $SYS topics every 20 s and
            # packet/event loggers; anonymous auth is the one we need.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        }

    @staticmethod
    async def _start_silently(broker: Any) -> None:
        # amqtt logs a full traceback before raising when it cannot bind; our caller turns the
        # error into one line, so hold amqtt's own report back for the duration.
        logger = logging.getLogger("amqtt.broker")
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            await broker.start()
        finally:
            logger.setLevel(level)
