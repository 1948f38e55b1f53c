"""Sinks: JSONL/stdout line format, isolation of a failing sink, sink-spec parsing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from affectstream.errors import SinkError
from affectstream.publish import messages
from affectstream.publish.sinks import Fanout, JsonlSink, StdoutSink, parse_sink


def _publish_all(fanout: Fanout, msgs: list[messages.Message]) -> None:
    async def go() -> None:
        await fanout.start()
        try:
            for m in msgs:
                await fanout.publish(m)
        finally:
            await fanout.close()

    asyncio.run(go())


def test_jsonl_lines_are_topic_and_payload(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    msgs = [messages.availability("cam0", True), messages.availability("cam0", False)]
    _publish_all(Fanout([JsonlSink(out)]), msgs)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines == [{"topic": "cam0/availability", "payload": "online"},
                     {"topic": "cam0/availability", "payload": "offline"}]


def test_jsonl_appends_and_never_truncates(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text('{"topic": "earlier", "payload": "run"}\n')
    _publish_all(Fanout([JsonlSink(out)]), [messages.availability("cam0", True)])
    assert len(out.read_text().splitlines()) == 2


def test_failing_sink_is_isolated_and_counted(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    # /dev/full accepts the open but fails every write with ENOSPC: a real failing sink.
    broken = JsonlSink(Path("/dev/full"))
    fanout = Fanout([broken, JsonlSink(good)])
    msgs = [messages.availability("cam0", True)] * 3
    _publish_all(fanout, msgs)
    assert len(good.read_text().splitlines()) == 3
    stats = fanout.stats()
    assert stats["jsonl:/dev/full"]["dropped"] == 3
    assert stats[f"jsonl:{good}"]["dropped"] == 0


def test_stdout_sink(capsys: pytest.CaptureFixture[str]) -> None:
    _publish_all(Fanout([StdoutSink()]), [messages.availability("cam1", True)])
    assert json.loads(capsys.readouterr().out) == {"topic": "cam1/availability",
                                                   "payload": "online"}


def test_unopenable_jsonl_is_a_sink_error(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="create the directory"):
        asyncio.run(JsonlSink(tmp_path / "missing" / "o.jsonl").start())


@pytest.mark.parametrize("spec", ["foo:bar", "jsonl:", "", "udp://x"])
def test_unknown_sink_specs(spec: str) -> None:
    with pytest.raises(SinkError, match="unknown sink"):
        parse_sink(spec)


def test_mqtt_spec_makes_an_mqtt_sink_with_redacted_name() -> None:
    from affectstream.publish.mqtt import MqttSink

    sink = parse_sink("mqtt://viewer:s3cret@127.0.0.1:1884/home/cams", camera="door")
    assert isinstance(sink, MqttSink)
    assert "s3cret" not in sink.name and "viewer:***@127.0.0.1:1884" in sink.name
    assert sink.target.prefix == "home/cams" and sink.target.port == 1884
    assert sink.target.username == "viewer" and sink.target.password == "s3cret"


@pytest.mark.parametrize("spec", ["mqtt://", "mqtt://host/a+b", "mqtts:///x"])
def test_bad_mqtt_urls(spec: str) -> None:
    with pytest.raises(SinkError, match="MQTT"):
        parse_sink(spec)
