import asyncio
import threading

import pytest

from affectstream.clock import SYSTEM_CLOCK, ManualClock


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=10.0, wall=1_000.0)
    assert (clock.monotonic(), clock.time()) == (10.0, 1_000.0)
    clock.advance(2.5)
    assert (clock.monotonic(), clock.time()) == (12.5, 1_002.5)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)


def test_manual_sleep_advances_at_once_and_records() -> None:
    clock = ManualClock(start=0.0)
    asyncio.run(clock.sleep(30.0))
    assert clock.monotonic() == 30.0
    assert clock.slept == [30.0]


def test_system_clock_reads_real_time() -> None:
    import time

    assert abs(SYSTEM_CLOCK.time() - time.time()) < 5
    a = SYSTEM_CLOCK.monotonic()
    assert SYSTEM_CLOCK.monotonic() >= a


def test_manual_wait_advances_unless_the_event_is_set() -> None:
    clock = ManualClock(start=0.0)
    event = threading.Event()
    assert clock.wait(event, 0.25) is False
    assert (clock.monotonic(), clock.slept) == (0.25, [0.25])
    event.set()
    assert clock.wait(event, 10.0) is True  # already set: no time passes
    assert (clock.monotonic(), clock.slept) == (0.25, [0.25])


def test_system_wait_returns_at_once_for_a_set_event() -> None:
    event = threading.Event()
    event.set()
    assert SYSTEM_CLOCK.wait(event, 600.0) is True  # a hang here is the test timeout
