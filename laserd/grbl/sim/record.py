"""What the simulated controller saw and did, for tests and benchmarks to assert on.

The record is written only by the simulator thread (under its lock) and read by tests; the
long logs are bounded deques so a simulator left running for days does not grow without end.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

LOG_LIMIT = 100_000
LAST_LINES = 200


@dataclass
class SimRecord:
    """Counters and logs of one simulator; reset only by :meth:`SimulatedGrbl.clear_record`."""

    # Receive side.
    bytes_in: int = 0
    bytes_out: int = 0
    rx_overflows: int = 0  # bytes dropped because the 128-byte receive buffer was full
    faults: list[str] = field(default_factory=list)
    lines_received: int = 0
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_LINES))
    lines_executed: int = 0  # lines answered ``ok``
    errors: list[tuple[int, int]] = field(default_factory=list)  # (line number, error code)
    alarms: list[int] = field(default_factory=list)
    # (time.monotonic_ns(), byte) for every real-time byte, stamped as it arrives.
    realtime_log: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    # (time.monotonic_ns(), on, power S) at every change of the beam.
    laser_log: deque[tuple[int, bool, float]] = field(
        default_factory=lambda: deque(maxlen=LOG_LIMIT)
    )
    # Planner starvation: the machine stopped for want of lines while a job was streaming.
    planner_starved_s: float = 0.0
    starvations: int = 0
    blocks_executed: int = 0
    # Live view, refreshed on every simulator step.
    state: str = "Idle"
    position_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    resets: int = 0
    banners: int = 0

    def fault(self, message: str) -> None:
        if len(self.faults) < 1000:
            self.faults.append(message)
