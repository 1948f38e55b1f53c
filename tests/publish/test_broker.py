"""The embedded amqtt broker: QoS 1, retained messages, restart, errors, the subscribe hint."""

from __future__ import annotations

import asyncio
import socket
import sys

import aiomqtt
import pytest

from affectstream.errors import SinkError
from affectstream.publish.broker import EmbeddedBroker

TIMEOUT_S = 10.0


async def _receive(client: aiomqtt.Client, count: int) -> list[aiomqtt.Message]:
    got: list[aiomqtt.Message] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for message in client.messages:
            got.append(message)
            if len(got) == count:
                return got
    return got


async def _nothing_more(client: aiomqtt.Client, wait_s: float = 0.5) -> list[aiomqtt.Message]:
    extra: list[aiomqtt.Message] = []
    try:
        async with asyncio.timeout(wait_s):
            async for message in client.messages:
                extra.append(message)
    except TimeoutError:
        pass
    return extra


@pytest.mark.e2e
def test_qos1_retained_and_late_subscriber() -> None:
    async def go() -> None:
        broker = EmbeddedBroker()
        await broker.start()
        try:
            assert broker.host == "127.0.0.1" and broker.port > 0
            assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
            async with aiomqtt.Client(broker.host, broker.port) as sub, \
                    aiomqtt.Client(broker.host, broker.port) as pub:
                await sub.subscribe("affectstream/#", qos=1)
                await pub.publish("affectstream/cam0/availability", "online", qos=1,
                                  retain=True)
                await pub.publish("affectstream/cam0/bursts", b'{"id": 1}', qos=1)
                live = await _receive(sub, 2)
                assert [(str(m.topic), m.payload, m.qos) for m in live] == [
                    ("affectstream/cam0/availability", b"online", 1),
                    ("affectstream/cam0/bursts", b'{"id": 1}', 1)]

                # A client that connects while `sub` holds affectstream/# gets nothing it did
                # not subscribe to (amqtt alone would push the retained message to it).
                async with aiomqtt.Client(broker.host, broker.port) as bystander:
                    assert await _nothing_more(bystander) == []

                async with aiomqtt.Client(broker.host, broker.port) as late:
                    await late.subscribe("affectstream/#", qos=1)
                    (first,) = await _receive(late, 1)
                    assert (str(first.topic), first.payload, first.retain, first.qos) == (
                        "affectstream/cam0/availability", b"online", True, 1)
                    assert await _nothing_more(late) == []  # once, and not the non-retained
        finally:
            await broker.stop()
            await broker.stop()  # idempotent
        assert not broker.running

    asyncio.run(go())


@pytest.mark.e2e
def test_stop_then_start_again_and_a_new_broker() -> None:
    async def go() -> None:
        broker = EmbeddedBroker()
        await broker.start()
        port = broker.port
        await broker.stop()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

        await broker.start()  # same object: same port, so clients can reconnect
        assert broker.port == port
        async with aiomqtt.Client(broker.host, broker.port) as c:
            await c.subscribe("t/#", qos=1)
            await c.publish("t/x", b"again", qos=1)
            assert (await _receive(c, 1))[0].payload == b"again"
        await broker.stop()

        other = EmbeddedBroker()
        await other.start()
        try:
            async with aiomqtt.Client(other.host, other.port) as c:
                await c.subscribe("t/#", qos=1)
                await c.publish("t/y", b"fresh", qos=1)
                assert (await _receive(c, 1))[0].payload == b"fresh"
        finally:
            await other.stop()

    asyncio.run(go())


def _connect_packet(client_id: str, will_topic: str, will: bytes) -> bytes:
    """A raw MQTT 3.1.1 CONNECT with a QoS-1 retained will, clean session, keepalive 60 s."""
    def field(b: bytes) -> bytes:
        return len(b).to_bytes(2, "big") + b

    body = (field(b"MQTT") + bytes([4, 0x02 | 0x04 | 0x08 | 0x20]) + (60).to_bytes(2, "big")
            + field(client_id.encode()) + field(will_topic.encode()) + field(will))
    assert len(body) < 128  # one-byte remaining length
    return bytes([0x10, len(body)]) + body


@pytest.mark.e2e
def test_will_is_published_retained_when_a_client_vanishes() -> None:
    async def go() -> None:
        broker = EmbeddedBroker()
        await broker.start()
        try:
            async with aiomqtt.Client(broker.host, broker.port) as sub:
                await sub.subscribe("affectstream/+/availability", qos=1)
                reader, writer = await asyncio.open_connection(broker.host, broker.port)
                writer.write(_connect_packet("doomed", "affectstream/cam0/availability",
                                             b"offline"))
                assert await reader.readexactly(4) == b"\x20\x02\x00\x00"  # CONNACK accepted
                writer.close()  # gone without a DISCONNECT, as a crash would be
                (msg,) = await _receive(sub, 1)
                assert (msg.payload, msg.qos) == (b"offline", 1)
            async with aiomqtt.Client(broker.host, broker.port) as late:
                await late.subscribe("affectstream/#", qos=1)
                (msg,) = await _receive(late, 1)
                assert (msg.payload, msg.retain) == (b"offline", True)
        finally:
            await broker.stop()

    asyncio.run(go())


@pytest.mark.e2e
def test_subscribe_hint_names_the_port_and_prefix() -> None:
    async def go() -> None:
        broker = EmbeddedBroker()
        await broker.start()
        try:
            assert broker.subscribe_hint() == (
                f"mosquitto_sub -h 127.0.0.1 -p {broker.port} -t 'affectstream/#' -v")
            assert "-t 'lab/#'" in broker.subscribe_hint("lab")
        finally:
            await broker.stop()

    asyncio.run(go())


def test_port_in_use_is_a_one_line_sink_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = EmbeddedBroker(port=port)
        with pytest.raises(SinkError, match=rf"cannot listen on 127\.0\.0\.1:{port} .*another"):
            asyncio.run(broker.start())
    assert not broker.running
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(SinkError, match="out of range"):
        EmbeddedBroker(port=70000)


def test_missing_amqtt_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail, as on an install without the extra.
    monkeypatch.setitem(sys.modules, "amqtt.broker", None)
    with pytest.raises(SinkError) as err:
        asyncio.run(EmbeddedBroker().start())
    assert str(err.value) == ("the embedded MQTT broker needs amqtt; "
                              "pip install 'affectstream[broker]'")
