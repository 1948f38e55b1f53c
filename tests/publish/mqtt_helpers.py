"""Real MQTT brokers and clients for the publish tests.

``Mosquitto`` runs the mosquitto binary (Debian package ``mosquitto``) as a subprocess on a
free loopback port, plain, with a password file, or with TLS and a password file, using a
throw-away CA made with ``cryptography``. ``Subscriber`` is a paho-mqtt client on a
background thread that records every message it receives, and ``retained`` reads what a late
subscriber would see.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

# Generous on purpose: CI machines have two loaded cores and mosquitto competes with the
# pipeline under test, so a tight deadline would only make the suite flaky.
START_DEADLINE_S = 10.0
CONNECT_TIMEOUT_S = 10.0


def _find_binary(name: str) -> str:
    # /usr/sbin is not on a normal user's PATH, but that is where Debian installs mosquitto.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(f"{name} not found; install the Debian package 'mosquitto'")
    return found


def free_port() -> int:
    """A loopback port that was free a moment ago (the caller retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Throw-away certificates: (cert PEM, key PEM) pairs.
_Pem = tuple[bytes, bytes]
_Key = ec.EllipticCurvePrivateKey


def _issue(cn: str, key: _Key, issuer: tuple[x509.Name, _Key] | None) -> x509.Certificate:
    """A CA certificate (``issuer`` None: self-signed) or a localhost server certificate."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         # Back-dated so a CI clock a little behind ours still accepts the certificate.
         .not_valid_before(now - dt.timedelta(days=1))
         .not_valid_after(now + dt.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
         # Key identifiers and key usage: OpenSSL 3 / Python 3.13 strict verification wants them.
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             issuer_key.public_key()), critical=False))
    if issuer is None:
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            critical=False).add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]),
            critical=False).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate, key: _Key) -> _Pem:
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@functools.lru_cache(maxsize=1)
def _certificates() -> tuple[_Pem, _Pem, _Pem]:
    """(CA, server cert for localhost/127.0.0.1 signed by it, an unrelated CA); made once."""
    ca_key, other_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _issue("affectstream test CA", ca_key, None)
    server = _issue("localhost", server_key, (ca.subject, ca_key))
    other = _issue("affectstream unrelated CA", other_key, None)
    return _pem(ca, ca_key), _pem(server, server_key), _pem(other, other_key)


class Mosquitto:
    """A mosquitto subprocess on 127.0.0.1; its config, logs and certificates live in ``workdir``.

    ``persistent=True`` keeps sessions and retained messages across ``restart()`` (saved on
    SIGTERM, not on ``kill()``), which a test of "delivered after the outage" needs so that a
    ``clean_session=False`` subscriber's queue survives the restart.
    """

    def __init__(self, workdir: Path, *, auth: bool | None = None, tls: bool = False,
                 persistent: bool = False, username: str = "affect",
                 password: str = "p4ss-w0rd", options: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        # TLS comes with a password by default: R5 is about the two together.
        self.auth = tls if auth is None else auth
        self.tls = tls
        self.persistent = persistent
        self.options = options
        """Extra mosquitto.conf lines (``set_tcp_nodelay true``)."""
        self.username: str | None = username if self.auth else None
        self.password: str | None = password if self.auth else None
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = workdir / "mosquitto.log"
        self.ca_file = workdir / "ca.pem"
        self.other_ca_file = workdir / "other-ca.pem"
        self._prepare()

    def _prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca, server, other = _certificates()
        self.ca_file.write_bytes(ca[0])
        self.other_ca_file.write_bytes(other[0])
        if self.tls:
            (self.workdir / "server.pem").write_bytes(server[0])
            (self.workdir / "server.key").write_bytes(server[1])
        if self.auth:
            assert self.username is not None and self.password is not None
            pw = self.workdir / "passwd"
            subprocess.run([_find_binary("mosquitto_passwd"), "-b", "-c", str(pw), self.username,
                            self.password], check=True, capture_output=True, timeout=30)
            pw.chmod(0o600)

    def _write_config(self) -> Path:
        lines = [f"listener {self.port} 127.0.0.1",
                 f"allow_anonymous {'false' if self.auth else 'true'}",
                 f"persistence {'true' if self.persistent else 'false'}",
                 "log_dest stderr", *self.options]
        if self.persistent:
            lines += [f"persistence_location {self.workdir}/", "autosave_interval 1"]
        if os.geteuid() == 0:
            # As root mosquitto drops to the 'mosquitto' user, who cannot read pytest's 0700
            # tmp dirs; staying root is harmless for a loopback test broker.
            lines.append("user root")
        if self.auth:
            lines.append(f"password_file {self.workdir / 'passwd'}")
        if self.tls:
            lines += [f"cafile {self.ca_file}", f"certfile {self.workdir / 'server.pem'}",
                      f"keyfile {self.workdir / 'server.key'}"]
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, new_port_on_conflict: bool = True) -> Mosquitto:
        """Start and wait until the port accepts connections; raise with the log tail if not."""
        if self.running:
            return self
        for attempt in range(3):
            try:
                self._spawn()
                return self
            except RuntimeError:
                # free_port() is only a hint: another process may take the port before
                # mosquitto binds it. A restart must keep its port, so only a first start moves.
                if not new_port_on_conflict or attempt == 2 or "in use" not in self.log_tail():
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        conf = self._write_config()
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen([_find_binary("mosquitto"), "-c", str(conf)],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}; "
                                   f"log tail:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)  # polling a port has no event to wait on
        self.kill()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within "
                           f"{START_DEADLINE_S:.0f} s; log tail:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM and wait (mosquitto saves persistence and closes clients cleanly)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: a crash, no goodbye to clients and no persistence save."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def restart(self) -> Mosquitto:
        """Stop (if running) and start again on the same port."""
        self.stop()
        return self.start(new_port_on_conflict=False)

    def log_tail(self, lines: int = 20) -> str:
        text = self._log.read_text(errors="replace") if self._log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def host(self) -> str:
        # The server certificate names localhost (and 127.0.0.1); TLS clients use the name.
        return "localhost" if self.tls else "127.0.0.1"

    @property
    def url(self) -> str:
        cred = f"{self.username}:{self.password}@" if self.auth else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{cred}{self.host}:{self.port}"

    def client_kwargs(self) -> dict[str, Any]:
        """host/port/username/password/ca_file for ``Subscriber``, ``retained``, ``try_connect``."""
        return {"host": self.host, "port": self.port, "username": self.username,
                "password": self.password, "ca_file": self.ca_file if self.tls else None}

    def __repr__(self) -> str:
        return f"Mosquitto({self.url}, running={self.running})"


# What the ``mosquitto_factory`` fixture yields: ``make(auth=…, tls=…, persistent=…)``.
MosquittoFactory = Callable[..., Mosquitto]


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int


def _client(client_id: str | None, clean_session: bool, username: str | None,
            password: str | None, ca_file: Path | str | None,
            reconnect: bool = True) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=client_id or f"test-{uuid.uuid4().hex[:12]}",
                         clean_session=clean_session, reconnect_on_failure=reconnect)
    if username is not None:
        client.username_pw_set(username, password)
    if ca_file is not None:
        client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
    # Fast reconnects: tests restart brokers and wait for the subscriber to come back.
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    return client


@contextlib.contextmanager
def _connected(client: mqtt.Client, host: str, port: int) -> Iterator[mqtt.Client]:
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def try_connect(host: str, port: int, *, username: str | None = None,
                password: str | None = None, ca_file: Path | str | None = None,
                timeout: float = CONNECT_TIMEOUT_S) -> str:
    """Connect once and return the CONNACK reason ('Success', 'Not authorized', …).

    TLS failures raise from the handshake (``ssl.SSLCertVerificationError``).
    """
    # No reconnect: after a refusal paho would sleep in its retry loop and delay loop_stop().
    client = _client(None, True, username, password, ca_file, reconnect=False)
    got = threading.Event()
    result: list[str] = []

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        result.append(str(rc))
        got.set()

    client.on_connect = on_connect
    with _connected(client, host, port):
        if not got.wait(timeout):
            raise TimeoutError(f"no CONNACK from {host}:{port} within {timeout} s")
        return result[0]


def publish(host: str, port: int, topic: str, payload: bytes | str, *, qos: int = 1,
            retain: bool = False, username: str | None = None, password: str | None = None,
            ca_file: Path | str | None = None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Publish one message and return once the broker has it (PUBACK for QoS 1)."""
    with _connected(_client(None, True, username, password, ca_file), host, port) as client:
        info = client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"publish to {topic} not acknowledged within {timeout} s")


class Subscriber:
    """Records every message on ``topic`` (QoS ``qos``) from a paho client on its own thread.

    It resubscribes after each reconnect, so it follows a broker restart; use
    ``clean_session=False`` and a fixed ``client_id`` with a ``persistent`` broker to also get
    what was published while it was away.
    """

    def __init__(self, host: str, port: int, topic: str = "affectstream/#", *, qos: int = 1,
                 username: str | None = None, password: str | None = None,
                 ca_file: Path | str | None = None, client_id: str | None = None,
                 clean_session: bool = True) -> None:
        self.host, self.port, self.topic, self.qos = host, port, topic, qos
        self._cond = threading.Condition()
        self._messages: list[Received] = []
        self._subacks = 0
        self._refused: str | None = None
        self._client = _client(client_id, clean_session, username, password, ca_file)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._started = False

    # paho callbacks run on the client's network thread.
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            with self._cond:
                self._refused = str(rc)
                self._cond.notify_all()
            return
        client.subscribe(self.topic, qos=self.qos)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, rcs: Any, _p: Any) -> None:
        with self._cond:
            if any(rc.is_failure for rc in rcs):
                self._refused = f"subscription to {self.topic!r} refused: {rcs}"
            else:
                self._subacks += 1
            self._cond.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self._messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain),
                                           int(msg.qos)))
            self._cond.notify_all()

    def start(self, timeout: float = CONNECT_TIMEOUT_S) -> Subscriber:
        """Connect and return once the subscription is acknowledged."""
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        self._started = True
        try:
            self.wait_subscribed(1, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_subscribed(self, count: int = 1, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Block until ``count`` SUBACKs arrived in total (one more per reconnect)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._subacks >= count or self._refused is not None,
                                     timeout)
            if self._refused is not None:
                raise ConnectionRefusedError(f"subscriber refused: {self._refused}")
            if not ok:
                raise TimeoutError(f"subscriber on {self.host}:{self.port} had {self._subacks} "
                                   f"of {count} SUBACKs after {timeout} s")

    @property
    def subscriptions(self) -> int:
        with self._cond:
            return self._subacks

    @property
    def messages(self) -> list[Received]:
        with self._cond:
            return list(self._messages)

    def wait_until(self, condition: Callable[[list[Received]], bool],
                   timeout: float = 10.0) -> list[Received]:
        """Block until ``condition(all messages so far)`` holds; return that snapshot."""
        with self._cond:
            if not self._cond.wait_for(lambda: condition(self._messages), timeout):
                seen = [(m.topic, m.payload[:60]) for m in self._messages[-10:]]
                raise TimeoutError(f"condition not met within {timeout} s; "
                                   f"{len(self._messages)} messages, last: {seen}")
            return list(self._messages)

    def wait_for(self, predicate: Callable[[Received], bool],
                 timeout: float = 10.0) -> Received:
        """Block until a recorded message satisfies ``predicate``; return the first such."""
        msgs = self.wait_until(lambda ms: any(predicate(m) for m in ms), timeout)
        return next(m for m in msgs if predicate(m))

    def wait_quiet(self, quiet_s: float = 0.5, timeout: float = 10.0) -> list[Received]:
        """Block until ``quiet_s`` passes without a new message (at most ``timeout``)."""
        start = last = time.monotonic()
        with self._cond:
            seen = len(self._messages)
            while True:
                now = time.monotonic()
                if len(self._messages) != seen:
                    seen, last = len(self._messages), now
                elif now - last >= quiet_s or now - start >= timeout:
                    return list(self._messages)
                # Woken by each message (or another notify); either way the checks above decide.
                self._cond.wait(min(quiet_s - (now - last), timeout - (now - start)))

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._client.disconnect()
            self._client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def retained(host: str, port: int, topic_filter: str = "affectstream/#", *,
             username: str | None = None, password: str | None = None,
             ca_file: Path | str | None = None, quiet_s: float = 0.5,
             timeout: float = 10.0) -> dict[str, bytes]:
    """Retained messages a late subscriber sees: topic -> payload, after ``quiet_s`` of quiet."""
    with Subscriber(host, port, topic_filter, username=username, password=password,
                    ca_file=ca_file) as sub:
        msgs = sub.wait_quiet(quiet_s, timeout)
    return {m.topic: m.payload for m in msgs if m.retain}
