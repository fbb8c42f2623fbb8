"""Test rig for the safety supervisor: mock GPIO pins and a real pty as the serial line."""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from typing import Any

from gpiozero.pins.mock import MockFactory

from laserd.events import Event, EventHub
from laserd.safety import SafetyAudit, SafetySupervisor, Trip
from laserd.settings import SafetySettings


class SerialLine:
    """Stands in for ``GrblLink.realtime``: writes each byte to a pty, reads the far end.

    Every write is stamped (``perf_counter_ns`` and thread) and a reader thread stamps every
    byte arriving on the other side, so tests can tell *when* and *from where* a byte left.
    """

    def __init__(self) -> None:
        self.controller_fd, self.port_fd = os.openpty()
        tty.setraw(self.port_fd)
        tty.setraw(self.controller_fd)
        self.written: list[tuple[int, int, int]] = []  # (byte, t_ns, thread id)
        self.received: list[tuple[int, int]] = []  # (byte, t_ns)
        self.connected = True
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def realtime(self, byte: int) -> bool:
        if not self.connected:
            return False
        os.write(self.port_fd, bytes((byte,)))
        self.written.append((byte, time.perf_counter_ns(), threading.get_ident()))
        return True

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.controller_fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.controller_fd, 64)
            except OSError:
                return
            t_ns = time.perf_counter_ns()
            self.received.extend((b, t_ns) for b in data)

    @property
    def bytes_written(self) -> list[int]:
        return [b for b, _, _ in self.written]

    def wait_received(self, count: int, timeout_s: float = 5.0) -> list[int]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.002)
        return [b for b, _ in self.received]

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=2)
        os.close(self.port_fd)
        os.close(self.controller_fd)


class FakeClock:
    """A monotonic clock the test moves by hand (resume delays without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Rig:
    """Everything a supervisor test touches, with recorders for what came out."""

    def __init__(self, factory: MockFactory, line: SerialLine, hub: EventHub) -> None:
        self.factory = factory
        self.line = line
        self.hub = hub
        self.events: list[Event] = []
        self.trips: list[tuple[str, str, str]] = []
        self.audits: list[tuple[str, dict[str, Any]]] = []
        self.supervisors: list[SafetySupervisor] = []
        hub.on(Event, self.events.append)
        hub.on(SafetyAudit, self.audit)
        hub.on(Trip, lambda t: self.trips.append((t.name, t.kind, t.action)))

    async def audit(self, entry: SafetyAudit) -> None:
        self.audits.append((entry.event, entry.details))

    def build(
        self, *, clock: Callable[[], float] = time.monotonic, **safety: Any
    ) -> SafetySupervisor:
        safety.setdefault("resume_delay_s", 0)
        settings = SafetySettings.model_validate(safety)
        sup = SafetySupervisor(
            settings, self.factory, self.line.realtime, self.hub, clock=clock
        )
        self.supervisors.append(sup)
        return sup

    async def started(self, **safety: Any) -> SafetySupervisor:
        """Built, every interlock circuit closed, started and settled."""
        sup = self.build(**safety)
        sup.drive_all_safe()
        await sup.start()
        assert sup.all_safe()
        # Start-up confirmations are events too; tests look at what follows.
        self.events.clear()
        self.audits.clear()
        return sup

    def pin(self, number: int) -> Any:
        return self.factory.pin(number)

    def interlock_events(self, name: str) -> list[bool]:
        return [
            e.data["safe"]
            for e in self.events
            if e.type == "interlock" and e.data["name"] == name
        ]


async def until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait for a condition the loop brings about; generous for a busy machine."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in another thread (as gpiozero's callback thread would) and return its result."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout=10)
    if errors:
        raise errors[0]
    return result[0] if result else None


LID = {"name": "lid", "kind": "lid", "pin": 17, "debounce_ms": 0}
ESTOP = {"name": "estop", "kind": "estop", "pin": 5, "debounce_ms": 0}
COOLANT = {"name": "coolant", "kind": "coolant", "pin": 6, "debounce_ms": 0}
KEY = {"name": "key", "kind": "key", "pin": 13, "debounce_ms": 0}
CUSTOM = {"name": "fence", "kind": "custom", "pin": 19, "debounce_ms": 0}
LASER_PIN = 27
