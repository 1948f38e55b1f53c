"""The ``preview`` and ``metrics`` config sections (the web server of :mod:`affectstream.web`),
and the ``HOST:PORT`` syntax of ``--preview`` and ``--metrics``.

Both serve faces or run data, so both bind to a loopback address unless the config says
otherwise: a page that shows people's faces and emotion estimates must never be reachable from
the network by accident.
"""

from __future__ import annotations

import ipaddress
from typing import Self

from pydantic import Field, model_validator

from affectstream.configbase import Section as _Section
from affectstream.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP; any other name counts as remote (it may resolve to
    anything)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_bind(section: str, host: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback(host):
        raise ValueError(
            f"{section}.host {host} is not a loopback address and would serve faces and run data "
            f"to the network; use 127.0.0.1, or set {section}.allow_remote: true (behind a "
            "firewall or an authenticating proxy)")


class PreviewConfig(_Section):
    host: str = Field(DEFAULT_HOST, min_length=1, description="Address the live preview page listens on; a non-loopback address needs allow_remote.")
    port: int | None = Field(None, ge=0, le=65535, description="Port of the live preview page (/, /stream.mjpg, /events, /metrics, /healthz); None: no preview; 0 picks a free port (printed at start).")
    max_fps: float = Field(10.0, gt=0, le=60, description="At most this many annotated frames per second are encoded, and only while a viewer is connected.")
    jpeg_quality: int = Field(80, ge=10, le=100, description="JPEG quality of the annotated video.")
    allow_remote: bool = Field(False, description="Allow a non-loopback host. The page shows faces and emotion estimates and has no authentication: put it behind a firewall or an authenticating proxy.")
    client_queue: int = Field(256, ge=8, le=100_000, description="Messages buffered per /events client; a slower browser loses the oldest (counted in metrics), never slows the run.")

    @model_validator(mode="after")
    def _check_host(self) -> Self:
        _check_bind("preview", self.host, self.allow_remote)
        return self


class MetricsConfig(_Section):
    host: str = Field(DEFAULT_HOST, min_length=1, description="Address of the Prometheus endpoint of its own (/metrics, /healthz); a non-loopback address needs allow_remote. With a preview, /metrics is also served there.")
    port: int | None = Field(None, ge=0, le=65535, description="Port of the Prometheus endpoint of its own; None: none (the preview server, when on, still serves /metrics).")
    allow_remote: bool = Field(False, description="Allow a non-loopback host (e.g. 0.0.0.0 for a Prometheus server on another machine).")

    @model_validator(mode="after")
    def _check_host(self) -> Self:
        _check_bind("metrics", self.host, self.allow_remote)
        return self


def parse_address(spec: str, flag: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1); ``[::1]:PORT`` for IPv6."""
    host, sep, port = spec.strip().rpartition(":")
    if not sep:
        host = ""
    host = host.strip("[]") or DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigError(f"{flag} {spec!r}: expected HOST:PORT, :PORT or PORT with a port "
                          "0–65535 (e.g. 127.0.0.1:8090); fix the value")
    return host, number
