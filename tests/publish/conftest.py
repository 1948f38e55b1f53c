"""Real mosquitto brokers for the publish tests, one per test, always stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mqtt_helpers import Mosquitto, MosquittoFactory  # tests/publish is on sys.path


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[MosquittoFactory]:
    """``make(auth=…, tls=…, persistent=…)`` -> a started broker; all are killed at teardown."""
    made: list[Mosquitto] = []

    def make(**options: Any) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"mosquitto{len(made)}", **options)
        made.append(broker)
        return broker.start()

    yield make
    for broker in made:
        broker.kill()


@pytest.fixture
def mosquitto(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    """Anonymous broker: ``mosquitto.url`` is ``mqtt://127.0.0.1:PORT``."""
    return mosquitto_factory()


@pytest.fixture
def mosquitto_auth(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    """Password-only broker: ``mqtt://user:pass@127.0.0.1:PORT``; anonymous is refused."""
    return mosquitto_factory(auth=True)


@pytest.fixture
def mosquitto_tls(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    """TLS + password: ``mqtts://user:pass@localhost:PORT``, trust ``mosquitto_tls.ca_file``."""
    return mosquitto_factory(tls=True)
