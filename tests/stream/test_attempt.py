"""Attempt: a blocking call the caller may abandon (a stream open against a silent server)."""

from __future__ import annotations

import threading

import pytest

from affectstream.stream.attempt import Attempt


def test_the_result_or_the_error_of_the_call() -> None:
    stop = threading.Event()
    assert Attempt(lambda: 42, lambda v: None, name="t").result(stop) == 42

    def fails() -> int:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        Attempt(fails, lambda v: None, name="t").result(stop)


def test_an_abandoned_call_releases_what_it_returns_later() -> None:
    gate, stop = threading.Event(), threading.Event()
    released: list[str] = []
    came = threading.Event()

    def slow_open() -> str:
        gate.wait(30)
        return "capture"

    def release(value: str) -> None:
        released.append(value)
        came.set()

    attempt = Attempt(slow_open, release, name="t")
    stop.set()
    assert attempt.result(stop) is None  # the caller is free at once
    gate.set()  # the open returns after all
    assert came.wait(30) and released == ["capture"]
