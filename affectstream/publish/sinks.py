"""Output sinks: JSONL file and stdout here, MQTT in :mod:`affectstream.publish.mqtt`.

Every sink gets every message. A sink that fails is isolated: its errors are counted and logged
once, and the other sinks go on.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from affectstream.config import MqttConfig
from affectstream.errors import SinkError
from affectstream.publish.messages import Message
from affectstream.urls import redact_url

log = logging.getLogger("affectstream.publish")


class Sink(Protocol):
    name: str

    async def start(self) -> None: ...
    async def publish(self, message: Message) -> None: ...
    async def close(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...


class _LineSink:
    """Writes ``{"topic", "payload"}`` JSON lines, flushed per message so a crash or a kill
    loses nothing already produced."""

    name = "lines"

    def __init__(self) -> None:
        self._stream: IO[str] | None = None
        self._written = 0
        self._failed = 0

    async def publish(self, message: Message) -> None:
        if self._stream is None:
            raise SinkError(f"sink {self.name} used before start; this is a bug")
        if message.broker_only:
            return
        self._stream.write(json.dumps(message.to_json_obj(), ensure_ascii=False) + "\n")
        self._stream.flush()
        self._written += 1

    def stats(self) -> dict[str, Any]:
        return {"queued": 0, "dropped": self._failed, "connected": self._stream is not None}


class JsonlSink(_LineSink):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.name = f"jsonl:{path}"

    async def start(self) -> None:
        try:
            # Append: re-running onto the same file never destroys an earlier run's output.
            self._stream = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot open {self.name}: {exc.strerror}; create the directory "
                            "or choose another path") from exc

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class StdoutSink(_LineSink):
    name = "stdout"

    async def start(self) -> None:
        self._stream = sys.stdout

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.flush()
        self._stream = None


def check_sink(spec: str, mqtt: MqttConfig | None = None) -> str:
    """The kind of a sink spec (``stdout``, ``jsonl`` or ``mqtt``), its syntax checked the way
    :func:`parse_sink` reads it but without creating anything (the config checks its sinks with
    this when it loads). Raises SinkError."""
    if spec == "stdout":
        return "stdout"
    if spec.startswith("jsonl:") and len(spec) > len("jsonl:"):
        return "jsonl"
    if spec.startswith(("mqtt://", "mqtts://")):
        from affectstream.publish.mqtt import parse_mqtt_url  # aiomqtt only when MQTT is used

        parse_mqtt_url(spec, mqtt or MqttConfig())
        return "mqtt"
    raise SinkError(f"unknown sink '{redact_url(spec)}'; use mqtt://host, mqtts://host, "
                    "mqtt://embedded, jsonl:PATH or stdout")


def parse_sink(spec: str, mqtt: MqttConfig | None = None, camera: str = "cam0",
               cameras: Sequence[str] = ()) -> Sink:
    """A sink from its spec: ``stdout``, ``jsonl:PATH``, ``mqtt://…``, ``mqtts://…``;
    ``cameras``: every camera of the process, when it has several."""
    kind = check_sink(spec, mqtt)
    if kind == "stdout":
        return StdoutSink()
    if kind == "jsonl":
        return JsonlSink(Path(spec[len("jsonl:"):]).expanduser())
    from affectstream import __version__
    from affectstream.publish.mqtt import MqttSink

    return MqttSink(spec, mqtt or MqttConfig(), camera, __version__, cameras=cameras)


class Fanout:
    """Publishes each message to every sink; one sink's failure never stops the others."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self._errors: dict[str, int] = {}

    async def start(self) -> None:
        started: list[Sink] = []
        try:
            for sink in self.sinks:
                await sink.start()
                started.append(sink)
        except BaseException:
            for sink in started:
                await sink.close()
            raise

    async def publish(self, message: Message) -> None:
        for sink in self.sinks:
            try:
                await sink.publish(message)
            except Exception as exc:  # isolate: a broken sink must not stop the others
                count = self._errors.get(sink.name, 0) + 1
                self._errors[sink.name] = count
                if count == 1:
                    log.error("sink %s failed: %s (further errors counted in stats)",
                              sink.name, exc)

    async def close(self) -> None:
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception as exc:
                log.error("closing sink %s failed: %s", sink.name, exc)

    def stats(self) -> dict[str, dict[str, Any]]:
        out = {}
        for sink in self.sinks:
            st = dict(sink.stats())
            st["dropped"] = int(st.get("dropped", 0)) + self._errors.get(sink.name, 0)
            out[sink.name] = st
        return out
