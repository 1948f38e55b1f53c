"""FairSlots: one cap for every camera's VLM requests, handed out in turn."""

from __future__ import annotations

import pytest

from affectstream.emotion.slots import FairSlots


class User:
    """A camera's scheduler in miniature: ``queued`` requests, started while slots allow."""

    def __init__(self, name: str, slots: FairSlots, log: list[str], queued: int) -> None:
        self.name, self.slots, self.log, self.queued = name, slots, log, queued

    def pump(self) -> None:
        while self.queued and self.slots.acquire(self.pump):
            self.queued -= 1
            self.log.append(self.name)


def test_slots_go_round_robin_between_users() -> None:
    slots, log = FairSlots(1), []
    busy, quiet = User("busy", slots, log, 5), User("quiet", slots, log, 2)
    busy.pump()  # takes the only slot, and joins the line for its next request
    quiet.pump()  # joins the line behind it
    for _ in range(6):
        slots.release()
    # in turn: a user that was served goes to the back, so quiet never waits for two of busy's
    assert log == ["busy", "busy", "quiet", "busy", "quiet", "busy", "busy"]
    assert slots.used == 1 and not slots.waiting()


def test_a_user_with_nothing_left_does_not_block_the_line() -> None:
    slots, log = FairSlots(2), []
    a, b = User("a", slots, log, 3), User("b", slots, log, 1)
    a.pump()  # two slots, a third waits
    b.pump()  # joins behind a
    a.queued = 0  # a's waiting request was coalesced away
    slots.release()
    assert log == ["a", "a", "b"] and slots.used == 2


def test_leaving_drops_a_user_from_the_line() -> None:
    slots, log = FairSlots(1), []
    a, b = User("a", slots, log, 2), User("b", slots, log, 1)
    a.pump()
    b.pump()
    slots.leave(b.pump)
    slots.release()
    assert log == ["a", "a"]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        FairSlots(0)
