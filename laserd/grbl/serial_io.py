"""Serial I/O for the GRBL link: line splitting, a transport that closes without blocking,
and a direct write for real-time bytes."""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import Callable

import serial
import serial_asyncio


class SerialLineProtocol(asyncio.Protocol):
    """Splits received bytes into lines (CR/LF stripped, blank lines dropped); reports the
    loss of the port."""

    def __init__(
        self,
        on_line: Callable[[str], None],
        on_lost: Callable[[SerialLineProtocol, Exception | None], None],
    ) -> None:
        self._on_line = on_line
        self._on_lost = on_lost
        self._partial = b""

    def data_received(self, data: bytes) -> None:
        if self._partial:
            data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        if len(self._partial) > 4096:  # noise without newlines: do not grow forever
            self._partial = b""
        on_line = self._on_line
        for raw in lines:
            line = raw.decode("ascii", "replace").strip()
            if line:
                on_line(line)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(self, exc)


class QuietCloseTransport(serial_asyncio.SerialTransport):
    """pyserial-asyncio's transport without the ``tcdrain`` on close.

    The stock transport drains the output (``Serial.flush``) on the event loop before closing;
    on a stalled or vanished port that can block the loop, and the link closes the port only
    when it is giving up on it anyway.
    """

    # Set by the (untyped) base class; declared here so the override below is checked.
    _serial: serial.Serial | None
    _protocol: asyncio.BaseProtocol | None
    _loop: asyncio.AbstractEventLoop | None

    def _call_connection_lost(self, exc: Exception | None) -> None:
        ser, protocol = self._serial, self._protocol
        try:
            if protocol is not None:
                protocol.connection_lost(exc)
        finally:
            self._write_buffer.clear()
            self._serial = None
            self._protocol = None
            self._loop = None
            if ser is not None:
                ser.close()


def write_all(fd: int, data: bytes, timeout_s: float = 0.05) -> bool:
    """os.write that waits briefly (select) when the non-blocking port is momentarily full."""
    deadline = time.monotonic() + timeout_s
    while data:
        try:
            n = os.write(fd, data)
        except (BlockingIOError, InterruptedError):
            n = 0
        data = data[n:]
        if data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            select.select([], [fd], [], remaining)
    return True
