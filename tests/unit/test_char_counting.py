"""Property test: the character-counting sender never overruns GRBL's receive buffer.

A model controller receives the sender's bytes into a buffer of ``capacity`` bytes and, at
arbitrary moments chosen by hypothesis, takes the oldest complete line out of it and answers
``ok``. The sender decides what to send with :class:`CharCounter` exactly as the link's pump
does (oldest first, stop at the first line that does not fit). Whatever the line lengths and
acknowledgement timing, the model's buffer never holds more than ``capacity`` bytes, every
line is acknowledged in order, and the counter ends empty.
"""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laserd.grbl.counting import CharCounter


class ModelGrbl:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rx = deque[bytes]()
        self.bytes_held = 0
        self.peak = 0
        self.processed: list[bytes] = []

    def receive(self, data: bytes) -> None:
        self.rx.append(data)
        self.bytes_held += len(data)
        self.peak = max(self.peak, self.bytes_held)
        assert self.bytes_held <= self.capacity, "receive buffer overrun"

    def process_one(self) -> bool:
        if not self.rx:
            return False
        line = self.rx.popleft()
        self.bytes_held -= len(line)
        self.processed.append(line)
        return True


def pump(counter: CharCounter[int], queue: deque[bytes], grbl: ModelGrbl, sent: list[bytes]):
    while queue and counter.fits(len(queue[0])):
        data = queue.popleft()
        counter.push(len(data), len(sent))
        sent.append(data)
        grbl.receive(data)


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(min_value=16, max_value=256),
    lengths=st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=200),
    steps=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=400),
)
def test_never_exceeds_the_buffer(capacity, lengths, steps):
    lengths = [min(n, capacity) for n in lengths]  # the link refuses lines that never fit
    lines = deque(b"G" * (n - 1) + b"\n" for n in lengths)
    total = len(lines)
    counter: CharCounter[int] = CharCounter(capacity)
    grbl = ModelGrbl(capacity)
    sent: list[bytes] = []
    acked: list[int] = []
    pump(counter, lines, grbl, sent)
    # Hypothesis picks how many lines the controller finishes between sender wake-ups
    # (0 = the sender runs again before any answer), then we drain whatever is left.
    for burst in [*steps, *([1] * (total + 1))]:
        for _ in range(burst):
            if grbl.process_one():
                acked.append(counter.pop())
        assert counter.used <= capacity
        assert counter.used >= grbl.bytes_held  # never optimistic about free space
        pump(counter, lines, grbl, sent)
        if len(acked) == total:
            break
    assert acked == list(range(total))  # acknowledged in order, each once
    assert grbl.processed == sent
    assert counter.used == 0 and len(counter) == 0
    assert grbl.peak <= capacity


@given(sizes=st.lists(st.integers(min_value=1, max_value=128), max_size=50))
def test_push_refuses_what_does_not_fit(sizes):
    counter: CharCounter[int] = CharCounter(128)
    for i, size in enumerate(sizes):
        if counter.fits(size):
            counter.push(size, i)
        else:
            with pytest.raises(ValueError):
                counter.push(size, i)
        assert counter.used <= 128


def test_clear_and_stray_acks():
    counter: CharCounter[str] = CharCounter(64)
    counter.push(10, "a")
    counter.push(20, "b")
    assert counter.oldest() == "a"
    assert counter.clear() == ["a", "b"]
    assert counter.used == 0
    assert counter.pop() is None  # an answer that crossed a reset frees nothing
    counter.capacity = 32
    assert not counter.fits(33) and counter.fits(32)
