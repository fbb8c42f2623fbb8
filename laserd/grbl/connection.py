"""The serial port to a GRBL controller: open, supervise and reconnect, and the direct writes.

:class:`SerialConnection` owns the file descriptor. It knows nothing of lines, counting or the
controller's state; the link (:mod:`laserd.grbl.link`) gives it three hooks: the session to
run after opening (the handshake), what to do when the port is lost, and what to do when a
soft reset went out.

Real-time bytes (``?`` ``!`` ``~`` 0x18, overrides) go through :meth:`SerialConnection.realtime`:
one ``os.write`` on the descriptor under a lock, from any thread, never through the event loop,
so the safety supervisor's GPIO callback reaches the controller while the loop stalls. That
path is exactly what it was inside the old single ``GrblLink``: GPIO thread → output → byte.

The counted line writes (:meth:`write`) share the lock with it. A soft reset written from any
thread closes :attr:`gate` under that lock at the same instant, so no queued line can follow
the reset onto the wire (the controller would run it after restarting); the sender opens the
gate again when the controller's banner arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
from collections.abc import Awaitable, Callable

import serial

from laserd.grbl.errors import LinkDown, LinkTimeout
from laserd.grbl.protocol import RT
from laserd.grbl.serial_io import QuietCloseTransport, SerialLineProtocol, write_all

log = logging.getLogger(__name__)


class SerialConnection:
    """One serial port, kept open across unplugs while wanted."""

    def __init__(
        self, port: str, baudrate: int, *, reconnect_s: float, autoconnect: bool
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self._reconnect_s = reconnect_s
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._transport: QuietCloseTransport | None = None
        self._protocol: SerialLineProtocol | None = None
        self.fd: int | None = None
        self._fd_lock = threading.Lock()
        #: Closed (True) from opening the port or writing a soft reset until the controller's
        #: banner: no counted line may be written meanwhile.
        self.gate_closed = True
        #: Soft resets written (any thread) and answered by a banner, to order the two.
        self.resets_sent = 0
        self.resets_answered = 0

        self.want_connected = autoconnect
        self._wake = asyncio.Event()
        self._attempt_waiters: list[asyncio.Future[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self.closing = False
        self._failures = 0

        #: Hooks set by the owner (the link) before :meth:`start`.
        self.on_line: Callable[[str], None] = lambda line: None
        self.on_reset_written: Callable[[int], None] = lambda seq: None
        self.session: Callable[[], Awaitable[None]] | None = None
        self.on_down: Callable[[Exception], None] = lambda exc: None

    @property
    def is_open(self) -> bool:
        return self.fd is not None

    # ------------------------------------------------------------------ direct writes

    def realtime(self, byte: int | bytes) -> bool:
        """Send one real-time byte at once, bypassing any queue and asyncio. Thread-safe.

        A single ``os.write`` on the port's descriptor. Returns False (and does nothing) when
        the port is closed or the write failed.
        """
        value = byte[0] if isinstance(byte, bytes | bytearray) else int(byte)
        data = bytes((value,))
        with self._fd_lock:
            fd = self.fd
            if fd is None:
                return False
            if value == RT.RESET:
                # Set under the fd lock, so a line write in progress on the loop finishes first.
                self.gate_closed = True
                self.resets_sent += 1
                seq = self.resets_sent
            try:
                written = write_all(fd, data)
            except OSError as exc:
                log.warning("real-time byte 0x%02x not written: %s", value, exc)
                return False
        if value == RT.RESET and written:
            self.call_on_loop(functools.partial(self.on_reset_written, seq))
        return written

    def write(self, data: bytes) -> None:
        """Write counted lines; straight to the descriptor when the transport has nothing
        buffered (no trip through the loop), the rest through the transport."""
        transport = self._transport
        if transport is None:
            return
        if transport.get_write_buffer_size() == 0:
            with self._fd_lock:
                fd = self.fd
                if fd is None or self.gate_closed:
                    # A reset was written from another thread since the sender looked: these
                    # lines belong to the old session and are failed when it is noted.
                    return
                try:
                    n = os.write(fd, data)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError as exc:
                    log.warning("serial write failed: %s", exc)
                    n = 0
            data = data[n:]
        if data:
            transport.write(data)

    def banner_seen(self) -> None:
        """The controller restarted: every reset written so far is answered; lines may go."""
        self.gate_closed = False
        self.resets_answered = self.resets_sent

    def reset_pending(self, seq: int) -> bool:
        """Whether the reset numbered ``seq`` is still unanswered on an open port."""
        return self.fd is not None and seq > self.resets_answered

    # ------------------------------------------------------------------ loop

    def bind_loop(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()

    def call_on_loop(self, fn: Callable[[], None]) -> None:
        loop = self.loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                loop.call_soon_threadsafe(fn)

    # ------------------------------------------------------------------ open and close

    async def open(self) -> None:
        """Open the port (in an executor: opening can block) and start reading lines."""
        assert self.loop is not None
        ser = await self.loop.run_in_executor(
            None, functools.partial(serial.serial_for_url, self.port,
                                    baudrate=self.baudrate, exclusive=True))
        protocol = SerialLineProtocol(self.on_line, self._on_lost)
        self.gate_closed = True
        self._protocol = protocol
        self._transport = QuietCloseTransport(self.loop, protocol, ser)
        with self._fd_lock:
            self.fd = ser.fd
        log.info("opened %s at %d baud", self.port, self.baudrate)

    def abort(self) -> None:
        """Close the port at once (idempotent)."""
        with self._fd_lock:
            self.fd = None
        transport, self._transport = self._transport, None
        self._protocol = None
        if transport is not None:
            transport.abort()
        self.gate_closed = True

    def _on_lost(self, protocol: SerialLineProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        if not self.closing and self.want_connected:
            log.warning("lost %s: %s", self.port, exc or "closed")
        self.on_down(LinkDown(f"The link to {self.port} was lost."))
        self._wake.set()

    # ------------------------------------------------------------------ supervision

    def start(self) -> None:
        """Start the connect/reconnect supervisor (it connects now when wanted)."""
        self.bind_loop()
        if self._supervisor is None or self._supervisor.done():
            self.closing = False
            self._supervisor = asyncio.create_task(self._supervise(), name="grbl-link")

    async def close(self) -> None:
        self.closing = True
        self.want_connected = False
        self._wake.set()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None

    async def connect(self, timeout_s: float) -> None:
        """Want the port open and wait for the next attempt's outcome."""
        self.want_connected = True
        self.start()
        assert self.loop is not None
        fut: asyncio.Future[None] = self.loop.create_future()
        self._attempt_waiters.append(fut)
        self._wake.set()
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise LinkTimeout(f"Could not connect to {self.port} in {timeout_s:.0f} s.") from None

    def disconnect(self) -> None:
        self.want_connected = False
        self._wake.set()

    async def _supervise(self) -> None:
        while not self.closing:
            if not self.want_connected:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                assert self.session is not None
                await self.session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Say it once at WARNING; an unplugged port is retried quietly after that.
                self._failures += 1
                level = logging.WARNING if self._failures == 1 else logging.DEBUG
                log.log(level, "cannot connect to %s: %s (retrying every %.1f s)",
                        self.port, exc, self._reconnect_s)
                self.on_down(exc if isinstance(exc, LinkDown) else LinkDown(str(exc)))
                self._resolve_attempts(exc)
                await self._sleep(self._reconnect_s)
                continue
            self._failures = 0
            self._resolve_attempts(None)
            # Connected: wait until the link drops or a disconnect is requested.
            while self.fd is not None and self.want_connected and not self.closing:
                self._wake.clear()
                await self._wake.wait()
            if self.fd is not None:
                self.on_down(LinkDown("The link was disconnected on request."))
            elif self.want_connected and not self.closing:
                await self._sleep(self._reconnect_s)

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until woken (a connect request, a close)."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _resolve_attempts(self, exc: BaseException | None) -> None:
        waiters, self._attempt_waiters = self._attempt_waiters, []
        for fut in waiters:
            if fut.done():
                continue
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc if isinstance(exc, LinkDown) else LinkDown(
                    f"Cannot connect to {self.port}: {exc}"))
