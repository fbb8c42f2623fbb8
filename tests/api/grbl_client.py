"""A GRBL sender written for the tests: character counting against a 128-byte buffer, the
way LightBurn and other streaming senders do it, over a TCP connection to the bridge.

Each line sent is counted (its bytes plus the newline); a line goes out only while the
count stays within the buffer; every ``ok`` / ``error:N`` frees the oldest. Status reports,
messages and banners are collected apart, so a test can look at each kind.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Received:
    answers: list[str] = field(default_factory=list)  # ok / error:N, in order
    status: list[str] = field(default_factory=list)  # <...>
    other: list[str] = field(default_factory=list)  # [MSG:], banners, ALARM, $$ ...


class GrblClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 buffer_bytes: int = 128) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer_bytes = buffer_bytes
        self.rx = Received()
        self._in_flight: deque[tuple[int, float]] = deque()
        self._freed = asyncio.Event()
        self._any = asyncio.Event()
        self.closed = asyncio.Event()
        #: Seconds from sending a line to its answer (the bridge's added latency is in here).
        self.latencies: list[float] = []
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, host: str, port: int) -> GrblClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def _read(self) -> None:
        try:
            while True:
                raw = await self.reader.readline()
                if not raw:
                    break
                line = raw.decode("latin-1").strip()
                if not line:
                    continue
                if line == "ok" or line.startswith("error:"):
                    self.rx.answers.append(line)
                    if self._in_flight:
                        _, sent_at = self._in_flight.popleft()
                        self.latencies.append(time.perf_counter() - sent_at)
                    self._freed.set()
                elif line.startswith("<"):
                    self.rx.status.append(line)
                else:
                    self.rx.other.append(line)
                self._any.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            self._freed.set()
            self._any.set()

    @property
    def in_flight_bytes(self) -> int:
        return sum(n for n, _ in self._in_flight)

    async def send_line(self, line: str) -> None:
        """Send one line once it fits the counted buffer."""
        data = (line + "\n").encode()
        while self.in_flight_bytes + len(data) > self.buffer_bytes:
            if self.closed.is_set():
                raise ConnectionError("the bridge closed the connection")
            self._freed.clear()
            await self._freed.wait()
        self._in_flight.append((len(data), time.perf_counter()))
        self.writer.write(data)

    async def stream(self, lines: list[str]) -> None:
        for line in lines:
            await self.send_line(line)
        await self.drain()

    async def drain(self, timeout_s: float = 60) -> None:
        """Until every line sent has its answer."""
        async def done() -> None:
            while self._in_flight and not self.closed.is_set():
                self._freed.clear()
                await self._freed.wait()

        await asyncio.wait_for(done(), timeout_s)

    async def command(self, line: str, timeout_s: float = 10) -> str:
        before = len(self.rx.answers)
        await self.send_line(line)
        await self.wait_for(lambda: len(self.rx.answers) > before, timeout_s)
        return self.rx.answers[before]

    def realtime(self, byte: bytes) -> None:
        self.writer.write(byte)

    async def wait_for(self, predicate, timeout_s: float = 10) -> None:  # type: ignore[no-untyped-def]
        async def check() -> None:
            while not predicate():
                if self.closed.is_set() and not predicate():
                    raise ConnectionError("closed while waiting")
                self._any.clear()
                await self._any.wait()

        await asyncio.wait_for(check(), timeout_s)

    def saw(self, fragment: str) -> bool:
        return any(fragment in line for line in self.rx.other)

    async def close(self, abort: bool = False) -> None:
        if abort:
            self.writer.transport.abort()
        else:
            self.writer.close()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
