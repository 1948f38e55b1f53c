"""The live state of the cameras on a broker, built from retained and live messages."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from affectstream.client.received import Received
from affectstream.schemas.models import Burst, Emotion, ProcessStats, Stats, Track

RECENT_BURSTS = 20


@dataclass
class CameraState:
    camera: str
    availability: str | None = None
    """``online`` / ``offline`` (retained), None until heard."""
    stats: Stats | None = None
    """The latest stats (retained)."""
    emotions: dict[int, Emotion] = field(default_factory=dict)
    """Latest emotion per face (retained while the face's track lives)."""
    tracks: dict[int, Track | None] = field(default_factory=dict)
    """Faces present: their ``new`` event, or None for a face known only from its retained
    emotion (the client connected after the track began)."""
    bursts: deque[Burst] = field(default_factory=lambda: deque(maxlen=RECENT_BURSTS))
    """The latest bursts, newest last."""
    last_message_at: float | None = None
    """When a message of this camera last arrived (wall clock, epoch s)."""


@dataclass
class State:
    cameras: dict[str, CameraState] = field(default_factory=dict)
    process: ProcessStats | None = None
    """The process-level stats of a run of several cameras."""

    def camera(self, camera: str) -> CameraState:
        return self.cameras.setdefault(camera, CameraState(camera))

    def apply(self, msg: Received) -> None:
        """Fold one message into the state."""
        if msg.camera is None:
            if isinstance(msg.payload, ProcessStats):
                self.process = msg.payload
            return
        cam = self.camera(msg.camera)
        cam.last_message_at = msg.received_at
        payload = msg.payload
        if msg.kind == "availability" and isinstance(payload, str):
            cam.availability = payload
            if payload == "offline":
                cam.tracks.clear()  # no face is present on a camera that is down
        elif isinstance(payload, Stats):
            cam.stats = payload
        elif isinstance(payload, Emotion):
            cam.emotions[payload.track_id] = payload
            cam.tracks.setdefault(payload.track_id, None)
        elif msg.kind == "emotion" and payload is None and msg.track_id is not None:
            cam.emotions.pop(msg.track_id, None)
        elif isinstance(payload, Track):
            self._track(cam, payload)
        elif isinstance(payload, Burst):
            cam.bursts.append(payload)

    @staticmethod
    def _track(cam: CameraState, event: Track) -> None:
        if event.type == "new":
            cam.tracks[event.track_id] = event
        else:
            cam.tracks.pop(event.track_id, None)
            cam.emotions.pop(event.track_id, None)

    # -- views ------------------------------------------------------------------------------
    def availability(self) -> dict[str, str]:
        """Each camera's availability, for the cameras heard of."""
        return {c: s.availability for c, s in self.cameras.items() if s.availability}

    def emotions(self) -> dict[tuple[str, int], Emotion]:
        """The latest emotion of every face, by (camera, track)."""
        return {(c, t): e for c, s in self.cameras.items() for t, e in s.emotions.items()}

    def tracks(self) -> dict[str, set[int]]:
        """The faces present, by camera."""
        return {c: set(s.tracks) for c, s in self.cameras.items()}
