"""``affectstream replay``: republish a recorded run (a ``jsonl:`` sink's file) at its pace.

Each line is ``{"topic", "payload"}`` with the topic without its prefix. The lines carry no time
of their own, so the pace comes from the payloads' wall-clock ``ts``: a message is due
``(ts − first ts) / speed`` after the replay started; a line without ``ts`` (availability) goes
right after the one before it, and a ``ts`` earlier than an earlier line's never reorders lines.
QoS and retain come from the topic table and the sinks are the run's own (an MQTT sink announces
availability and registers its last will as in a live run); a track's ``end`` is followed by the
empty retained message that deletes its emotion, as a live run does. The recording is checked
whole before anything is published, so a bad line fails before the broker sees a message, and
then streamed, so its length does not matter.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from affectstream.clock import SYSTEM_CLOCK, Clock
from affectstream.config import MqttConfig
from affectstream.errors import ConfigError, SinkError, SourceError
from affectstream.publish import messages
from affectstream.publish.messages import Message
from affectstream.publish.sinks import Fanout, parse_sink
from affectstream.schemas.topics import route_of, topic_for

log = logging.getLogger("affectstream.replay")


@dataclass(frozen=True)
class ReplayOptions:
    file: Path
    sinks: Sequence[str]
    speed: float = 1.0
    loop: bool = False
    camera_id: str | None = None
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    message: Message
    ts: float | None
    """The payload's wall-clock ``ts`` (None for availability)."""


class Recording:
    """A ``jsonl:`` sink's file as the messages a live run publishes; with ``camera_id``,
    renamed to that camera. Opening it checks every line in one streaming pass that keeps only
    its cameras and its size, so a recording of any length replays in constant memory; each
    pass of the replay reads it again. Raises SourceError naming the bad line."""

    def __init__(self, path: Path, camera_id: str | None = None) -> None:
        self.path = path
        self._camera_id = camera_id
        cameras: set[str] = set()
        count = 0
        for item in self._lines():
            count += 1
            if (match := route_of(item.message.topic)) and match.camera:
                cameras.add(match.camera)
        if not count:
            raise SourceError(f"recording {path} is empty; record a run first with "
                              "affectstream run --sink jsonl:FILE")
        if camera_id is not None and len(cameras) > 1:
            raise ConfigError(f"recording {path} has cameras {', '.join(sorted(cameras))}; "
                              "--camera-id renames a one-camera recording only")
        self._count = count
        self.cameras = sorted(cameras) if camera_id is None or not cameras else [camera_id]
        """The cameras its messages are about (after renaming)."""

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Recorded]:
        for item in self._lines():
            if self._camera_id is None:
                yield item
            else:
                yield replace(item, message=_as_camera(item.message, self._camera_id))

    def _lines(self) -> Iterator[Recorded]:
        try:
            stream = self.path.open(encoding="utf-8")
        except OSError as exc:
            raise SourceError(f"cannot read recording {self.path}: {exc.strerror}; give the "
                              "file a jsonl: sink wrote (affectstream run --sink jsonl:FILE)"
                              ) from exc
        with stream:
            for number, line in enumerate(stream, start=1):
                if line.strip():
                    yield _parse_line(self.path, number, line)


def read_recording(path: Path, camera_id: str | None = None) -> Recording:
    """The recording at ``path`` (see :class:`Recording`), checked whole."""
    return Recording(path, camera_id)


def _parse_line(path: Path, number: int, line: str) -> Recorded:
    where = f"recording {path} line {number}"
    try:
        obj = json.loads(line)
        if not isinstance(obj, dict) or set(obj) != {"topic", "payload"}:
            raise ValueError('not a {"topic", "payload"} object')
        message = messages.from_topic(str(obj["topic"]), obj["payload"])
    except (ValueError, KeyError, ValidationError) as exc:
        reason = str(exc).splitlines()[0]
        raise SourceError(f"{where} is not a message of this version ({reason}); replay reads "
                          "what a jsonl: sink wrote") from exc
    payload = message.payload
    ts = payload.get("ts") if isinstance(payload, dict) else None
    return Recorded(message, float(ts) if isinstance(ts, int | float) else None)


def _as_camera(message: Message, camera: str) -> Message:
    match = route_of(message.topic)
    if match is None or match.camera is None:
        return message  # the process-level stats: no camera
    payload: Any = message.payload
    if isinstance(payload, dict):
        payload = _renamed_ids({**payload, "camera": camera}, match.camera, camera)
    return replace(message, topic=topic_for(match.route.kind, camera, match.track_id),
                   payload=payload)


def _renamed_ids(payload: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """Burst ids start with the camera ({camera}-{run}-t{track}-f{frame}): rename them too,
    wherever they appear, so the references between messages still hold."""
    def rename(burst_id: str) -> str:
        return new + burst_id[len(old):] if burst_id.startswith(f"{old}-") else burst_id

    if payload.get("schema") == "affectstream.burst/1":
        payload["id"] = rename(payload["id"])
    if isinstance(payload.get("burst_id"), str):
        payload["burst_id"] = rename(payload["burst_id"])
    if isinstance(payload.get("bursts"), list):
        payload["bursts"] = [rename(b) for b in payload["bursts"]]
    return payload


class Pacer:
    """When each message is due: ``(ts − first ts) / speed`` after the first message."""

    def __init__(self, speed: float, clock: Clock) -> None:
        self._speed = speed
        self._clock = clock
        self._start: float | None = None
        self._t0: float | None = None

    async def wait(self, ts: float | None) -> None:
        now = self._clock.monotonic()
        if self._start is None:
            self._start = now
        if ts is None:
            return
        if self._t0 is None:
            self._t0 = ts
        delay = self._start + (ts - self._t0) / self._speed - now
        if delay > 0:
            await self._clock.sleep(delay)


async def replay(recorded: Iterable[Recorded], fanout: Fanout, speed: float = 1.0,
                 loop: bool = False, clock: Clock = SYSTEM_CLOCK) -> int:
    """Publish ``recorded`` (a :class:`Recording` or a list: read again for each pass of a
    ``loop``) through ``fanout`` at its pace; returns the number of messages published."""
    sent = 0
    while True:
        pacer = Pacer(speed, clock)
        emotions: set[str] = set()
        for item in recorded:
            await pacer.wait(item.ts)
            await fanout.publish(item.message)
            sent += 1
            sent += await _after(item.message, emotions, fanout)
        if not loop:
            return sent


async def _after(message: Message, emotions: set[str], fanout: Fanout) -> int:
    """What a live run publishes right after ``message``: a track's end deletes its retained
    emotion. Returns the number of messages published."""
    match = route_of(message.topic)
    if match is None or match.camera is None:
        return 0
    if match.route.kind == "emotion":
        emotions.add(message.topic)
        return 0
    payload = message.payload
    if match.route.kind == "track" and isinstance(payload, dict) and payload["type"] == "end":
        topic = topic_for("emotion", match.camera, int(payload["track_id"]))
        if topic in emotions:
            emotions.discard(topic)
            await fanout.publish(messages.emotion_cleared(match.camera, int(payload["track_id"])))
            return 1
    return 0


def _with_prefix(spec: str, prefix: str | None) -> str:
    """An MQTT sink URL with its path (the prefix) replaced by ``prefix``."""
    if prefix is None or not spec.startswith(("mqtt://", "mqtts://")):
        return spec
    parts = urlsplit(spec)
    return urlunsplit((parts.scheme, parts.netloc, "/" + prefix.strip("/"), "", ""))


async def _replay_to_sinks(options: ReplayOptions, recorded: Recording,
                           mqtt: MqttConfig) -> int:
    cameras = recorded.cameras
    camera = cameras[0] if cameras else "cam0"
    sinks = [parse_sink(_with_prefix(spec, options.prefix), mqtt, camera, cameras)
             for spec in options.sinks]
    fanout = Fanout(sinks)
    await fanout.start()
    try:
        unreachable = [name for name, st in fanout.stats().items() if not st["connected"]]
        if unreachable:
            raise SinkError(f"cannot reach {', '.join(unreachable)}; start the broker or fix "
                            "the host and port in --sink")
        return await replay(recorded, fanout, options.speed, options.loop)
    finally:
        await fanout.close()


def replay_command(options: ReplayOptions, mqtt: MqttConfig) -> int:
    """Run a replay to its end (or until interrupted with ``loop``); messages published."""
    if not options.speed > 0:
        raise ConfigError(f"--speed {options.speed} must be above 0 (1: the original pace)")
    if options.camera_id is not None and route_of(f"{options.camera_id}/bursts") is None:
        raise ConfigError(f"--camera-id {options.camera_id!r} must match ^[A-Za-z0-9_-]+$")
    recorded = read_recording(options.file, options.camera_id)
    return asyncio.run(_replay_to_sinks(options, recorded, mqtt))
