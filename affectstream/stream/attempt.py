"""A blocking call that the caller may abandon: opening a stream or a camera.

FFmpeg's open cannot be interrupted from outside, and a server that accepts and stays silent
holds it for the whole open timeout; a stop must not wait that out. The call runs in a daemon
thread; the caller waits for it until its own stop flag is set, and an abandoned call releases
whatever it produces when it returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Attempt(Generic[T]):
    POLL_S = 0.05
    """How often the waiting caller checks its stop flag (two events cannot be awaited)."""

    def __init__(self, call: Callable[[], T], release: Callable[[T], None], *,
                 name: str) -> None:
        self._release = release
        self._lock = threading.Lock()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._abandoned = False
        self._done = threading.Event()
        threading.Thread(target=self._run, args=(call,), name=name, daemon=True).start()

    def _run(self, call: Callable[[], T]) -> None:
        try:
            value, error = call(), None
        except BaseException as exc:  # handed to the caller by result()
            value, error = None, exc
        with self._lock:
            if self._abandoned:
                if value is not None:
                    self._release(value)
                return
            self._value, self._error = value, error
        self._done.set()

    def result(self, stop: threading.Event) -> T | None:
        """What the call returned (its exception is raised here), or None once ``stop`` is
        set before it returned."""
        while not self._done.wait(self.POLL_S):
            if stop.is_set():
                with self._lock:
                    self._abandoned = True
                    value, self._value = self._value, None  # produced just as the stop came
                if value is not None:
                    self._release(value)
                return None
        if self._error is not None:
            raise self._error
        return self._value
