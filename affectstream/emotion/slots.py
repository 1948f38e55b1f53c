"""Request slots shared fairly: one cap on VLM requests in flight for every camera of a run,
handed out round-robin, so a busy camera cannot starve another (DESIGN §2: the VLM never
blocks perception; in-flight requests are capped)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

Pump = Callable[[], None]


class FairSlots:
    """At most ``capacity`` slots taken at once. A user that finds none free joins the line
    and its ``pump`` is called when a slot frees up, in the order they joined; a user that
    took a slot while others wait goes to the back of the line before taking another."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self.used = 0
        self._line: deque[Pump] = deque()

    def acquire(self, pump: Pump) -> bool:
        """Take a slot now (True), or join the line to be pumped later (False). Bound methods
        compare equal, not identical: ``==`` throughout."""
        first = not self._line or self._line[0] == pump
        if self.used < self.capacity and first:
            if self._line:
                self._line.popleft()
            self.used += 1
            return True
        if pump not in self._line:
            self._line.append(pump)
        return False

    def waiting(self) -> bool:
        """Whether another user is in line (the holder should then yield its turn)."""
        return bool(self._line)

    def release(self) -> None:
        """Give a slot back; those first in line are pumped while slots are free."""
        self.used -= 1
        while self._line and self.used < self.capacity:
            pump, used = self._line[0], self.used
            pump()  # it takes a slot (and may join the line again) or has nothing to send
            if self.used == used and self._line and self._line[0] == pump:
                self._line.popleft()

    def leave(self, pump: Pump) -> None:
        """``pump``'s user is gone (its camera closed)."""
        if pump in self._line:
            self._line.remove(pump)
