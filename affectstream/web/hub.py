"""What the web server knows of the run, per camera: the latest tapped frame (written by the
camera's perception thread) and the state rebuilt from its published messages (on the loop).

The frame slot is a single attribute assignment, atomic under the GIL, so the tap takes no lock
and returns at once; everything else is only touched on the event loop.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from affectstream.publish.messages import Message
from affectstream.types import Frame, FrameResult
from affectstream.web.annotate import Overlay
from affectstream.web.events import Broadcaster
from affectstream.web.metrics import Metrics

FLASH_S = 1.2
"""How long the video shows a burst (its flash and its AU text) after it was published."""
STALE_AFTER_S = 3.0
"""A running camera without a new frame for this long is reported ``stale``."""
REPLAY_S = 60.0
"""A new /events client first gets this much history, so its timeline starts filled."""


@dataclass
class CameraView:
    id: str
    source: str
    """The source, credentials redacted."""
    latest: tuple[Frame, FrameResult] | None = None
    """Written by the perception thread (one assignment), read on the loop."""
    last_frame_at: float | None = None
    emotions: dict[int, dict[str, Any]] = field(default_factory=dict)
    flash: tuple[dict[str, Any], float] | None = None
    stats: dict[str, Any] | None = None
    state: str = "starting"
    viewers: int = 0
    frames_sent: int = 0
    frames_skipped: int = 0
    history: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=2000))

    def overlay(self, result: FrameResult, now: float) -> Overlay:
        """What to draw on ``result``'s frame: its faces, their latest emotions, a recent
        burst."""
        faces = tuple((f.track_id, f.bbox) for f in result.faces)
        burst, strength = None, 0.0
        if self.flash is not None and now - self.flash[1] < FLASH_S:
            burst, strength = self.flash[0], 1.0 - (now - self.flash[1]) / FLASH_S
        live = {t for t, _ in faces}
        return Overlay(faces, {t: e for t, e in self.emotions.items() if t in live}, burst,
                       strength)

    def health(self, now: float) -> dict[str, Any]:
        state = self.state
        age = None if self.last_frame_at is None else round(now - self.last_frame_at, 3)
        if state == "running" and age is not None and age > STALE_AFTER_S:
            state = "stale"
        stats = self.stats or {}
        return {"state": state, "source": self.source, "frames": stats.get("frames", 0),
                "fps": stats.get("fps", 0.0), "last_frame_age_s": age,
                "viewers": self.viewers, "frames_sent": self.frames_sent,
                "frames_skipped": self.frames_skipped}


class Hub:
    """The run's side of the web server: :meth:`tap` is a frame tap, :meth:`observe` gets every
    published message (through :class:`HubSink`)."""

    def __init__(self, cameras: list[tuple[str, str]], metrics: Metrics,
                 broadcaster: Broadcaster, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cameras = {cid: CameraView(cid, source) for cid, source in cameras}
        self.metrics = metrics
        self.events = broadcaster
        self._clock = clock

    def tap(self, camera_id: str, frame: Frame | None, result: FrameResult) -> None:
        view = self.cameras.get(camera_id)
        if view is not None and frame is not None:  # the end's flush has no frame to show
            view.latest = (frame, result)
            view.last_frame_at = self._clock()

    def observe(self, message: Message) -> None:
        if message.broker_only:
            return
        camera = _camera_of(message)
        view = self.cameras.get(camera) if camera is not None else None
        if view is not None:
            self._update(view, message)
        self.metrics.observe(message)
        data = json.dumps(message.to_json_obj(), ensure_ascii=False)
        if view is not None and not message.topic.endswith("/stats"):
            view.history.append((self._clock(), data))
        self.events.publish(camera, data)

    def _update(self, view: CameraView, message: Message) -> None:
        kind = message.topic.rsplit("/", 1)[-1]
        payload = message.payload
        if kind == "availability":
            if payload == "online":
                view.state = "running"
            elif view.state == "running":
                view.state = "ended"
        elif not isinstance(payload, dict):
            return
        elif kind == "stats":
            view.stats = payload
            if view.state != "ended" and payload.get("state") in ("running", "opening"):
                view.state = str(payload["state"])
        elif kind == "emotion":
            view.emotions[int(payload["track_id"])] = payload
        elif kind == "bursts":
            view.flash = (payload, self._clock())
        elif kind == "tracks" and payload.get("type") == "end":
            view.emotions.pop(int(payload["track_id"]), None)

    def replay(self, camera: str | None) -> list[str]:
        """The last :data:`REPLAY_S` of messages (and the latest stats) of one camera or all."""
        now = self._clock()
        out: list[str] = []
        for view in self.cameras.values():
            if camera is not None and view.id != camera:
                continue
            if view.state in ("running", "ended"):  # its availability may be older
                out.append(json.dumps({"topic": f"{view.id}/availability",
                                       "payload": "online" if view.state == "running"
                                       else "offline"}))
            out += [data for at, data in view.history if now - at <= REPLAY_S]
            if view.stats is not None:
                out.append(json.dumps({"topic": f"{view.id}/stats", "payload": view.stats},
                                      ensure_ascii=False))
        return out

    def health(self) -> dict[str, Any]:
        now = self._clock()
        cameras = {cid: view.health(now) for cid, view in self.cameras.items()}
        ok = all(c["state"] == "running" for c in cameras.values())
        return {"status": "ok" if ok else "degraded", "cameras": cameras}


def _camera_of(message: Message) -> str | None:
    """The camera a message is about (None for the process-level ``stats``)."""
    camera = message.payload.get("camera") if isinstance(message.payload, dict) else None
    if isinstance(camera, str):
        return camera
    head, sep, _ = message.topic.partition("/")
    return head if sep else None


class HubSink:
    """The in-process sink that feeds the hub (shared by every camera of the run)."""

    name = "preview"

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def start(self) -> None:
        return None

    async def publish(self, message: Message) -> None:
        self._hub.observe(message)

    async def close(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"queued": self._hub.events.queued(), "dropped": self._hub.events.dropped,
                "connected": True}
