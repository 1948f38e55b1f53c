import asyncio

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
