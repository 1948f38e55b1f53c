"""Helpers of the web tests: a real run with its web server in a background thread, and
readers of the real MJPEG and server-sent event streams."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from affectstream.app import Runner
from affectstream.config import Config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """``check()``'s first truthy value within ``timeout`` s; fails naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            last = check()
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


@contextlib.contextmanager
def running(cfg: Config) -> Iterator[Runner]:
    """``cfg`` run by a real :class:`Runner` in a thread until the block ends."""
    runner = Runner(cfg)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            runner.run_sync()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=work, name="web-test-run", daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        deadline = time.monotonic() + 60
        while thread.is_alive() and time.monotonic() < deadline:
            runner.request_stop()  # a no-op until the run has started: ask again
            thread.join(timeout=0.5)
    assert not thread.is_alive(), "the run did not stop within 60 s"
    if errors:
        raise errors[0]


def mjpeg_parts(url: str, count: int, timeout: float = 60) -> list[tuple[dict[str, str], bytes]]:
    """The first ``count`` parts (headers, body) of a ``multipart/x-mixed-replace`` stream,
    parsed by its declared boundary."""
    parts: list[tuple[dict[str, str], bytes]] = []
    with httpx.stream("GET", url, timeout=timeout) as response:
        ctype = response.headers["content-type"]
        assert ctype.startswith("multipart/x-mixed-replace"), ctype
        boundary = ("--" + ctype.split("boundary=", 1)[1].strip()).encode()
        buf = b""
        for chunk in response.iter_bytes():
            buf += chunk
            while True:
                start = buf.find(boundary)
                head_end = buf.find(b"\r\n\r\n", start)
                if start < 0 or head_end < 0:
                    break
                lines = buf[start + len(boundary):head_end].decode().strip().split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines if ": " in line)
                size = int(headers["Content-Length"])
                if len(buf) < head_end + 4 + size:
                    break
                parts.append((headers, buf[head_end + 4:head_end + 4 + size]))
                buf = buf[head_end + 4 + size:]
                if len(parts) == count:
                    return parts
    raise AssertionError(f"{url} ended after {len(parts)} of {count} parts")


def sse_messages(url: str, until: Callable[[list[tuple[str, Any]]], bool],
                 timeout: float = 60) -> list[tuple[str, Any]]:
    """(event name, parsed JSON data) of every server-sent event until ``until`` holds."""
    events: list[tuple[str, Any]] = []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", url, timeout=timeout) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        name, data = "message", ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data += line[len("data: "):]
            elif line == "" and data:
                events.append((name, json.loads(data)))
                name, data = "message", ""
                if until(events):
                    return events
            if time.monotonic() > deadline:
                break
    kinds = sorted({e[1].get("topic", e[0]) for e in events if isinstance(e[1], dict)})
    raise AssertionError(f"{url}: condition not met in {timeout:g} s; got {len(events)} events "
                         f"with topics {kinds}")
