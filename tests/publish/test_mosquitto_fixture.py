"""The mosquitto fixtures themselves: plain, password and TLS brokers, restart, retained."""

from __future__ import annotations

import ssl

import pytest
from mqtt_helpers import (
    Mosquitto,
    MosquittoFactory,
    Subscriber,
    publish,
    retained,
    try_connect,
)

pytestmark = pytest.mark.e2e  # real mosquitto processes


def _roundtrip(broker: Mosquitto) -> None:
    kw = broker.client_kwargs()
    with Subscriber(**kw) as sub:
        publish(**kw, topic="affectstream/cam0/bursts", payload=b'{"n": 1}')
        got = sub.wait_for(lambda m: m.topic == "affectstream/cam0/bursts")
    assert (got.payload, got.qos, got.retain) == (b'{"n": 1}', 1, False)


def test_plain_broker_roundtrip(mosquitto: Mosquitto) -> None:
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    assert mosquitto.username is None
    _roundtrip(mosquitto)


def test_auth_broker_roundtrip_and_refusals(mosquitto_auth: Mosquitto) -> None:
    b = mosquitto_auth
    assert b.url == f"mqtt://{b.username}:{b.password}@127.0.0.1:{b.port}"
    _roundtrip(b)
    assert try_connect(b.host, b.port, username=b.username, password="wrong") == "Not authorized"
    assert try_connect(b.host, b.port) == "Not authorized"


def test_tls_broker_trusts_only_its_ca(mosquitto_tls: Mosquitto) -> None:
    b = mosquitto_tls
    assert b.url == f"mqtts://{b.username}:{b.password}@localhost:{b.port}"
    _roundtrip(b)
    # The certificate also names 127.0.0.1, so clients that connect by address verify too.
    assert try_connect("127.0.0.1", b.port, username=b.username, password=b.password,
                       ca_file=b.ca_file) == "Success"
    with pytest.raises(ssl.SSLCertVerificationError):
        try_connect(b.host, b.port, username=b.username, password=b.password,
                    ca_file=b.other_ca_file)
    assert try_connect(b.host, b.port, username=b.username, password="wrong",
                       ca_file=b.ca_file) == "Not authorized"


def test_restart_keeps_port_and_subscriber_follows(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    kw = mosquitto.client_kwargs()
    with Subscriber(**kw) as sub:
        mosquitto.restart()
        assert mosquitto.port == port and mosquitto.running
        sub.wait_subscribed(2, timeout=15)  # paho reconnects on its own and resubscribes
        publish(**kw, topic="affectstream/cam0/tracks", payload=b"after")
        assert sub.wait_for(lambda m: m.payload == b"after").topic == "affectstream/cam0/tracks"
    mosquitto.kill()
    assert not mosquitto.running
    with pytest.raises(ConnectionRefusedError):
        try_connect(**kw)


def test_late_subscriber_sees_retained(mosquitto: Mosquitto) -> None:
    kw = mosquitto.client_kwargs()
    publish(**kw, topic="affectstream/cam0/availability", payload=b"offline", retain=True)
    publish(**kw, topic="affectstream/cam0/bursts", payload=b"not retained")
    assert retained(**kw) == {"affectstream/cam0/availability": b"offline"}
    assert retained(**kw, topic_filter="other/#") == {}


def test_persistent_broker_queues_for_an_offline_session(
        mosquitto_factory: MosquittoFactory) -> None:
    b = mosquitto_factory(persistent=True)
    kw = b.client_kwargs()
    with Subscriber(**kw, client_id="keeper", clean_session=False):
        pass  # registers the persistent QoS-1 session, then goes offline
    b.restart()  # SIGTERM saves the session
    publish(**kw, topic="affectstream/cam0/bursts", payload=b"while away")
    with Subscriber(**kw, client_id="keeper", clean_session=False) as sub:
        assert sub.wait_for(lambda m: m.payload == b"while away").qos == 1
