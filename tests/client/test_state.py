"""The client's typed parsing and state, and replay's reading and pacing, without a broker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from test_message_models import _built  # tests/publish is on sys.path (conftest)

from affectstream.client.received import UnreadableError, parse_received
from affectstream.client.state import State
from affectstream.clock import ManualClock
from affectstream.errors import AffectStreamError
from affectstream.publish import messages
from affectstream.publish.replay import read_recording, replay
from affectstream.publish.sinks import Fanout
from affectstream.schemas import Burst, Emotion


def _raw(payload: Any) -> bytes:
    return (payload if isinstance(payload, str) else json.dumps(payload)).encode()


def test_state_follows_availability_emotions_tracks_and_bursts() -> None:
    state = State()
    for msg in _built():
        got = parse_received("pre", f"pre/{msg.topic}", _raw(msg.payload), False, 1.0)
        assert got is not None
        state.apply(got)
    cam = state.cameras["cam0"]
    assert state.availability() == {"cam0": "online"}
    assert isinstance(state.emotions()[("cam0", 1)], Emotion)
    assert state.tracks() == {"cam0": {1}} and isinstance(cam.bursts[-1], Burst)
    assert cam.stats is not None and state.process is not None
    cleared = messages.emotion_cleared("cam0", 1)
    state.apply(parse_received("pre", f"pre/{cleared.topic}", b"", True, 2.0))  # type: ignore[arg-type]
    assert state.emotions() == {}
    offline = parse_received("pre", "pre/cam0/availability", b"offline", True, 3.0)
    assert offline is not None
    state.apply(offline)
    assert state.tracks() == {"cam0": set()}


def test_parsing_skips_foreign_topics_and_flags_bad_payloads() -> None:
    assert parse_received("pre", "pre/cam0/something", b"{}", False, 1.0) is None
    assert parse_received("pre", "other/cam0/bursts", b"{}", False, 1.0) is None
    with pytest.raises(UnreadableError):
        parse_received("pre", "pre/cam0/bursts", b"not json", False, 1.0)
    with pytest.raises(UnreadableError):
        parse_received("pre", "pre/cam0/availability", b"maybe", False, 1.0)
    emotion = _built()[2].payload
    with pytest.raises(UnreadableError, match="carries"):
        parse_received("pre", "pre/cam0/bursts", _raw(emotion), False, 1.0)


class _ListSink:
    name = "list"

    def __init__(self, clock: ManualClock) -> None:
        self.got: list[tuple[float, messages.Message]] = []
        self._clock = clock

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def stats(self) -> dict[str, Any]:
        return {"queued": 0, "dropped": 0, "connected": True}

    async def publish(self, message: messages.Message) -> None:
        self.got.append((self._clock.monotonic(), message))


def test_replay_paces_by_ts_renames_the_camera_and_clears_emotions(tmp_path: Path) -> None:
    built = {m.topic: m for m in _built()}
    track = built["cam0/tracks"].payload
    assert isinstance(track, dict)
    lines = [("cam0/availability", "online"), ("cam0/tracks", track),
             ("cam0/faces/1/emotion", {**built["cam0/faces/1/emotion"].payload,  # type: ignore[dict-item]
                                       "ts": track["ts"] + 2.0}),
             ("cam0/tracks", {**track, "type": "end", "ts": track["ts"] + 3.0}),
             ("cam0/availability", "offline")]
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(json.dumps({"topic": t, "payload": p}) + "\n" for t, p in lines))
    clock = ManualClock()
    sink = _ListSink(clock)
    recorded = read_recording(path, camera_id="door")
    start = clock.monotonic()
    assert asyncio.run(replay(recorded, Fanout([sink]), speed=2.0, clock=clock)) == 6
    got = [(round(t - start, 3), m.topic, m.broker_only) for t, m in sink.got]
    assert got == [(0.0, "door/availability", False), (0.0, "door/tracks", False),
                   (1.0, "door/faces/1/emotion", False), (1.5, "door/tracks", False),
                   (1.5, "door/faces/1/emotion", True), (1.5, "door/availability", False)]
    assert all(m.payload["camera"] == "door" for _, m in sink.got if isinstance(m.payload, dict))


def test_replay_refuses_a_renamed_multi_camera_recording(tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    path.write_text('{"topic": "a/availability", "payload": "online"}\n'
                    '{"topic": "b/availability", "payload": "online"}\n')
    with pytest.raises(AffectStreamError, match="one-camera"):
        read_recording(path, camera_id="door")
    assert len(read_recording(path)) == 2


def test_a_recording_is_checked_whole_then_read_again_for_each_pass(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text('{"topic": "a/availability", "payload": "online"}\n\n'
                    '{"topic": "a/availability", "payload": "offline"}\n')
    recording = read_recording(path, camera_id="door")
    assert len(recording) == 2 and recording.cameras == ["door"]
    first = [(r.message.topic, r.message.payload) for r in recording]
    assert first == [("door/availability", "online"), ("door/availability", "offline")]
    assert [(r.message.topic, r.message.payload) for r in recording] == first  # a second pass
    path.write_text(path.read_text() + "not json\n")
    with pytest.raises(AffectStreamError, match="line 4"):  # nothing published before it
        read_recording(path)
