"""``affectstream replay``: republish a recorded run (a ``jsonl:`` sink's file) at its pace.

Each line is ``{"topic", "payload"}`` with the topic without its prefix. The lines carry no time
of their own, so the pace comes from the payloads' wall-clock ``ts``: a message is due
``(ts − first ts) / speed`` after the replay started; a line without ``ts`` (availability) goes
right after the one before it, and a ``ts`` earlier than an earlier line's never reorders lines.
QoS and retain come from the topic table and the sinks are the run's own (an MQTT sink announces
availability and registers its last will as in a live run); a track's ``end`` is followed by the
empty retained message that deletes its emotion, as a live run does. The recording is read and
checked whole before anything is published, so a bad line fails before the broker sees a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
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


def read_recording(path: Path, camera_id: str | None = None) -> list[Recorded]:
    """Every line of a ``jsonl:`` sink's file as the message a live run publishes; with
    ``camera_id``, renamed to that camera. Raises SourceError naming the bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"cannot read recording {path}: {exc.strerror}; give the file a "
                          "jsonl: sink wrote (affectstream run --sink jsonl:FILE)") from exc
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            out.append(_parse_line(path, number, line))
    if not out:
        raise SourceError(f"recording {path} is empty; record a run first with "
                          "affectstream run --sink jsonl:FILE")
    if camera_id is not None:
        out = _renamed(path, out, camera_id)
    return out


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


def _renamed(path: Path, recorded: list[Recorded], camera: str) -> list[Recorded]:
    cameras = {m.camera for r in recorded if (m := route_of(r.message.topic)) and m.camera}
    if len(cameras) > 1:
        raise ConfigError(f"recording {path} has cameras {', '.join(sorted(cameras))}; "
                          "--camera-id renames a one-camera recording only")
    return [replace(r, message=_as_camera(r.message, camera)) for r in recorded]


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


async def replay(recorded: list[Recorded], fanout: Fanout, speed: float = 1.0,
                 loop: bool = False, clock: Clock = SYSTEM_CLOCK) -> int:
    """Publish ``recorded`` through ``fanout`` at its pace (forever with ``loop``); returns
    the number of messages published."""
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


async def _replay_to_sinks(options: ReplayOptions, recorded: list[Recorded],
                           mqtt: MqttConfig) -> int:
    cameras = sorted({m.camera for r in recorded
                      if (m := route_of(r.message.topic)) and m.camera})
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
