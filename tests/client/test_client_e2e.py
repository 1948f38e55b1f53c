"""``affectstream.client`` against a real mosquitto broker: the typed messages of a real run in
order, a broker restart mid-stream survived, and a ``state`` that matches the retained topics."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli_env, read_jsonl
from mqtt_helpers import Mosquitto, retained

from affectstream.client import Client, Received
from affectstream.errors import BrokerError
from affectstream.schemas import Burst, Emotion, Stats

pytestmark = pytest.mark.e2e


async def _cli(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "affectstream", "-q", *args, cwd=cwd, env=cli_env(),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def _collect(client: Client, into: list[Received]) -> None:
    async for msg in client:
        into.append(msg)


def _dump(msg: Received) -> Any:
    payload = msg.payload
    return payload if isinstance(payload, str) else \
        payload.model_dump(mode="json", by_alias=True, exclude_unset=True)  # type: ignore[union-attr]


def test_client_receives_a_real_run_typed_and_in_order(
        media_dir: Path, model_paths: dict[str, Path], mosquitto: Mosquitto,
        tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"

    async def scenario() -> list[Received]:
        got: list[Received] = []
        async with Client(mosquitto.url) as client:
            reader = asyncio.create_task(_collect(client, got))
            proc = await _cli("run", "--source", str(media_dir / "single_face.mp4"),
                              "--no-realtime", "--sink", mosquitto.url, "--sink", f"jsonl:{out}",
                              cwd=tmp_path)
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            await _until(lambda: any(m.payload == "offline" for m in got))
            reader.cancel()
        return got

    got = asyncio.run(scenario())
    lines = read_jsonl(out)
    # The MQTT sink says online on connect before the run's own messages (docs/mqtt.md).
    assert (got[0].kind, got[0].payload) == ("availability", "online")
    assert [(m.topic.removeprefix("affectstream/"), _dump(m)) for m in got[1:]] == \
        [(ln["topic"], ln["payload"]) for ln in lines]
    kinds = {m.kind: type(m.payload).__name__ for m in got}
    assert kinds == {"availability": "str", "track": "Track", "log": "LogLine",
                     "burst": "Burst", "emotion": "Emotion", "stats": "Stats"}
    burst = next(m for m in got if isinstance(m.payload, Burst))
    assert (burst.camera, burst.track_id) == ("cam0", 1) and burst.payload.text  # type: ignore[union-attr]


async def _until(condition: Any, timeout: float = 30.0) -> None:
    """Poll ``condition`` on the event loop (the reader fills the list as messages come)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


def test_client_survives_a_broker_restart_mid_stream(
        media_dir: Path, model_paths: dict[str, Path], mosquitto: Mosquitto,
        tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Received], int, int]:
        got: list[Received] = []
        async with Client(mosquitto.url, kinds=["burst", "availability"],
                          backoff_max_s=1.0) as client:
            reader = asyncio.create_task(_collect(client, got))
            proc = await _cli("run", "--source", str(media_dir / "single_face.mp4"), "--loop",
                              "--max-seconds", "14", "--sink", mosquitto.url, cwd=tmp_path)
            await _until(lambda: any(m.kind == "burst" for m in got), 30)
            before = len(got)
            await asyncio.to_thread(mosquitto.restart)  # stop and start on the same port
            await _until(lambda: any(m.kind == "burst" for m in got[before:]), 30)
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            await _until(lambda: got[-1].payload == "offline")
            reader.cancel()
            return got, before, client.reconnects

    got, before, reconnects = asyncio.run(scenario())
    assert reconnects >= 1
    after = [m for m in got[before:] if m.kind == "burst"]
    assert after, "no burst after the broker restart"
    assert all(isinstance(m.payload, Burst) for m in after)


def test_client_state_matches_the_retained_topics(
        open_recording: Path, mosquitto: Mosquitto, tmp_path: Path) -> None:
    async def scenario() -> tuple[Client, Client]:
        async with Client(mosquitto.url, iterate=False) as live:
            proc = await _cli("replay", str(open_recording), "--sink", mosquitto.url,
                              "--speed", "20", cwd=tmp_path)
            _, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            await _until(lambda: live.state.cameras.get("cam0") is not None
                         and live.state.cameras["cam0"].stats is not None)
            async with Client(mosquitto.url, iterate=False) as late:  # retained only
                await _until(lambda: late.state.cameras.get("cam0") is not None
                             and late.state.cameras["cam0"].stats is not None
                             and bool(late.state.emotions()))
                return live, late

    live, late = asyncio.run(scenario())
    kept = retained("127.0.0.1", mosquitto.port)
    emotions = {t: json.loads(p) for t, p in kept.items() if t.endswith("/emotion") and p}
    assert emotions, kept.keys()
    for client in (live, late):
        state = client.state
        assert state.availability() == {"cam0": kept["affectstream/cam0/availability"].decode()}
        assert {f"affectstream/{c}/faces/{t}/emotion": e.model_dump(mode="json", by_alias=True)
                for (c, t), e in state.emotions().items()} == emotions
        stats = state.cameras["cam0"].stats
        assert isinstance(stats, Stats)
        assert stats.model_dump(mode="json", by_alias=True, exclude_unset=True) == \
            json.loads(kept["affectstream/cam0/stats"])
        assert state.tracks() == {"cam0": {1}}
        assert all(isinstance(e, Emotion) for e in state.emotions().values())


def test_a_persistent_session_gets_the_bursts_published_while_it_was_away(
        recording: Path, mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A client with ``session=NAME`` that subscribed once gets, on its next connect with the
    same NAME, the QoS 1 bursts published while it was gone; a clean session gets none."""
    bursts = [ln["payload"] for ln in read_jsonl(recording) if ln["topic"].endswith("/bursts")]
    assert bursts

    async def scenario() -> tuple[list[Received], list[Received]]:
        for session in ("logger-1", None):  # subscribe once, then go away
            async with Client(mosquitto.url, session=session):
                pass
        proc = await _cli("replay", str(recording), "--sink", mosquitto.url, "--speed", "20",
                          cwd=tmp_path)
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        got: dict[str | None, list[Received]] = {}
        for session in ("logger-1", None):
            got[session] = []
            async with Client(mosquitto.url, kinds=["burst"], session=session) as client:
                reader = asyncio.create_task(_collect(client, got[session]))
                await asyncio.sleep(1.5)  # queued messages come right after the connect
                reader.cancel()
        return got["logger-1"], got[None]

    persistent, clean = asyncio.run(scenario())
    assert [_dump(m) for m in persistent] == bursts
    assert clean == []


def test_a_session_name_that_is_no_client_id_is_refused() -> None:
    with pytest.raises(BrokerError, match="session name"):
        Client("mqtt://127.0.0.1:1", session="two words")
