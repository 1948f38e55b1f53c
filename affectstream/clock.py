"""Time as a dependency: the scheduler, the estimators, run statistics and the network clients
read the time and wait through a :class:`Clock`, so tests drive them with a
:class:`ManualClock` instead of real sleeps and wall-clock bounds.

``monotonic`` measures intervals (backoffs, latencies, rates); ``time`` stamps messages (Unix
seconds); ``sleep`` waits on the event loop. Code running in its own thread (capture pacing)
cannot await, so it waits through :class:`ThreadClock`'s blocking, interruptible ``wait``;
the real and the manual clock are both.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Final, Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals only)."""
        ...

    def time(self) -> float:
        """Unix time in seconds (timestamps in messages)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the running event loop."""
        ...


class ThreadClock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals only)."""
        ...

    def time(self) -> float:
        """Unix time in seconds (timestamps in messages)."""
        ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Block the calling thread until ``event`` is set or ``seconds`` pass; True when set."""
        ...


class SystemClock:
    """The real clocks: :func:`time.monotonic`, :func:`time.time`, :func:`asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(seconds)


# Typed as the class (a Clock and a ThreadClock), so it is the default for either kind.
SYSTEM_CLOCK: Final = SystemClock()


class ManualClock:
    """A clock that moves only when told to, for tests: :meth:`advance` moves both readings;
    :meth:`sleep` advances by the requested time at once and yields to the event loop once, so
    code that backs off for 30 s is tested in microseconds; :meth:`wait` does the same for a
    thread unless the event is already set."""

    def __init__(self, start: float = 1000.0, wall: float = 1_800_000_000.0) -> None:
        self._now = start
        self._offset = wall - start
        self.slept: list[float] = []
        """Every duration passed to :meth:`sleep`, in order."""

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        self._now += seconds

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._offset

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():  # a real wait on a set event returns at once, without time passing
            return True
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))
        return event.is_set()
