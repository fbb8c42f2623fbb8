"""Fixtures for talking to the simulated GRBL controller through its real pseudo-terminal.

``make_sim(**kwargs)`` starts a :class:`SimulatedGrbl` (stopped after the test);
``sim`` is one at a high time scale; ``port`` is a :class:`PtyClient` on it that has
already read the banner. The client is deliberately plain (``os.open`` + ``select``) so the
tests check the simulator, not our own link code.
"""

from __future__ import annotations

import os
import select
import termios
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from laserd.grbl.sim import SimulatedGrbl

FAST_TIME_SCALE = 100.0
BANNER = "Grbl 1.1h ['$' for help]"


class PtyClient:
    """A minimal serial client: raw pty, line reader, helpers for GRBL's replies."""

    BANNER = BANNER

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        # TCSANOW, not setraw's default TCSAFLUSH: keep what the board already sent.
        tty.setraw(self.fd, termios.TCSANOW)
        self._buf = bytearray()
        self.lines: list[str] = []  # every line read, for diagnostics

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(data)
        while view:
            select.select([], [self.fd], [], 1.0)
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                continue
            view = view[n:]

    def _fill(self, timeout_s: float) -> bool:
        readable, _, _ = select.select([self.fd], [], [], max(0.0, timeout_s))
        if not readable:
            return False
        data = os.read(self.fd, 4096)
        if not data:
            raise EOFError("port closed")
        self._buf += data
        return True

    def read_line(self, timeout_s: float = 5.0) -> str | None:
        """The next line without its ``\\r\\n``, or None when nothing comes in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            idx = self._buf.find(b"\n")
            if idx >= 0:
                raw = bytes(self._buf[:idx])
                del self._buf[: idx + 1]
                line = raw.decode("ascii", "replace").rstrip("\r")
                self.lines.append(line)
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._fill(remaining)

    def expect(self, predicate: Callable[[str], bool] | str, timeout_s: float = 5.0) -> list[str]:
        """Read lines until one matches (equal text or predicate); return all lines read."""
        check = predicate if callable(predicate) else (lambda line: line == predicate)
        seen: list[str] = []
        deadline = time.monotonic() + timeout_s
        while True:
            line = self.read_line(deadline - time.monotonic())
            if line is None:
                raise AssertionError(f"timed out waiting for {predicate!r}; got {seen!r}")
            seen.append(line)
            if check(line):
                return seen

    def command(self, line: str, timeout_s: float = 5.0) -> list[str]:
        """Send one line; return the lines up to and including its ``ok``/``error:N``."""
        self.send(line + "\n")
        return self.expect(self.is_response, timeout_s)

    def status(self, timeout_s: float = 5.0) -> str:
        """Send ``?`` and return the next status report (other lines are kept in .lines)."""
        self.send(b"?")
        return self.expect(lambda line: line.startswith("<"), timeout_s)[-1]

    def wait_state(self, state: str, timeout_s: float = 10.0, poll_s: float = 0.02) -> str:
        """Poll status until its state field starts with ``state``; return that report."""
        deadline = time.monotonic() + timeout_s
        report = ""
        while time.monotonic() < deadline:
            report = self.status()
            if report[1:].split("|")[0].startswith(state):
                return report
            time.sleep(poll_s)
        raise AssertionError(f"state {state!r} not reached; last report {report!r}")

    @staticmethod
    def is_response(line: str) -> bool:
        return line == "ok" or line.startswith("error:")

    @staticmethod
    def fields(report: str) -> dict[str, str]:
        """``<Idle|MPos:1,2,3|FS:0,0>`` -> {"state": "Idle", "MPos": "1,2,3", "FS": "0,0"}."""
        assert report.startswith("<") and report.endswith(">"), report
        parts = report[1:-1].split("|")
        fields = {"state": parts[0]}
        for part in parts[1:]:
            key, _, value = part.partition(":")
            fields[key] = value
        return fields

    @classmethod
    def position(cls, report: str) -> tuple[float, ...]:
        fields = cls.fields(report)
        return tuple(float(v) for v in (fields.get("MPos") or fields["WPos"]).split(","))

    def state(self) -> str:
        return self.fields(self.status())["state"]


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Callable[..., SimulatedGrbl]]:
    sims: list[SimulatedGrbl] = []

    def factory(**kwargs: object) -> SimulatedGrbl:
        kwargs.setdefault("time_scale", FAST_TIME_SCALE)
        kwargs.setdefault("link_dir", tmp_path / f"sim{len(sims)}")
        sim = SimulatedGrbl(**kwargs)  # type: ignore[arg-type]
        sims.append(sim)
        sim.start()
        deadline = time.monotonic() + 5
        while sim.tx_pending_bytes and time.monotonic() < deadline:
            time.sleep(0.002)  # the power-up banner goes to nobody, not to the first client
        return sim

    yield factory
    for sim in sims:
        sim.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., PtyClient]]:
    """``make_client(sim_or_path, read_banner=True)``: a client closed after the test.

    With ``read_banner`` the client starts in step with a freshly booted board: the simulator
    is power-cycled through fault injection (no byte on the wire, unless the board reboots on
    open by itself) or, for a bare path, soft-reset; the banner is read.
    """
    clients: list[PtyClient] = []

    def factory(target: SimulatedGrbl | str, *, read_banner: bool = True) -> PtyClient:
        client = PtyClient(target if isinstance(target, str) else target.link_path)
        clients.append(client)
        if read_banner:
            if isinstance(target, str):
                client.send(b"\x18")
            elif not target.reset_on_open:
                target.reset_controller()
            client.expect(BANNER)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def sim(make_sim: Callable[..., SimulatedGrbl]) -> SimulatedGrbl:
    return make_sim()


@pytest.fixture
def port(sim: SimulatedGrbl, make_client: Callable[..., PtyClient]) -> PtyClient:
    return make_client(sim)
