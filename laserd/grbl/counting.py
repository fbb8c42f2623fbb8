"""Character-counting bookkeeping for GRBL's serial receive buffer.

GRBL acknowledges each line with ``ok`` or ``error:N`` only after it has taken the line out of
its receive buffer, in the order the lines were sent. A sender that knows the buffer size can
therefore keep several lines in flight as long as the sum of their bytes (newline included)
never exceeds it; this keeps the planner fed without ever overrunning the buffer, which would
silently corrupt lines. This module is only the arithmetic, so it can be tested exhaustively.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class CharCounter(Generic[T]):
    """Bytes in flight, oldest first; :meth:`fits` decides whether another line may go out."""

    __slots__ = ("_capacity", "_inflight", "used")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._inflight: deque[tuple[int, T]] = deque()
        self.used = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        """A new buffer size (learned from the controller) applies to lines sent from now on."""
        if value <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = value

    def __len__(self) -> int:
        return len(self._inflight)

    def fits(self, size: int) -> bool:
        """Whether a line of ``size`` bytes can be sent now without overrunning the buffer."""
        return self.used + size <= self._capacity

    def push(self, size: int, item: T) -> None:
        """Record a line as sent. Refuses (ValueError) a line that does not fit."""
        if size <= 0:
            raise ValueError("a line has at least its newline")
        if self.used + size > self._capacity:
            raise ValueError(f"{size} bytes do not fit: {self.used}/{self._capacity} in use")
        self._inflight.append((size, item))
        self.used += size

    def pop(self) -> T | None:
        """An ``ok``/``error`` arrived: free the oldest line. None when nothing is in flight
        (a stray acknowledgement, e.g. one that crossed a reset)."""
        if not self._inflight:
            return None
        size, item = self._inflight.popleft()
        self.used -= size
        return item

    def oldest(self) -> T | None:
        return self._inflight[0][1] if self._inflight else None

    def items(self) -> list[T]:
        """The lines in flight, oldest first (still counted)."""
        return [item for _, item in self._inflight]

    def clear(self) -> list[T]:
        """The controller's buffer was flushed (reset, alarm, lost link): forget everything."""
        items = [item for _, item in self._inflight]
        self._inflight.clear()
        self.used = 0
        return items
