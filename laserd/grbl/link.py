"""The serial link to a GRBL 1.1 controller: connection, character counting, status polling.

:class:`GrblLink` owns the serial port. Every line (console commands, ``$`` commands, jog and
job lines) goes through one FIFO queue and is sent with *character counting*: the bytes in
flight never exceed the controller's receive buffer, and each ``ok``/``error:N`` frees the
oldest line. Real-time bytes (``?`` ``!`` ``~`` 0x18 0x84 0x85 overrides) bypass the queue and
asyncio entirely: :meth:`GrblLink.realtime` writes them straight to the file descriptor, from
any thread, so the safety supervisor reaches the controller even while the event loop stalls.

Lifecycle: ``await link.start()`` launches a supervisor task that opens the port (when
``autoconnect``), performs the handshake (banner, else soft reset and banner; then ``$$`` and
``$I``), polls status with ``?`` (about 5 Hz idle, 10 Hz while streaming or moving) and, after
a read error or EOF (unplug), marks the link ``disconnected``, fails whatever was in flight at
once and retries every ``reconnect_s``. ``await link.close()`` stops it all. The link never
sends ``$X`` or ``~`` on its own.

Streaming a job (the job runner's primitive)::

    async def lines():                       # or any iterable of (lineno, text)
        async for lineno, text in iter_file_lines(path):
            yield lineno, text

    result = await link.stream(lines(), on_progress=cb)   # cb(StreamProgress), throttled

Lines are normalised (:func:`~laserd.grbl.protocol.normalise_line`) as they are read, a bounded
number ahead of the controller, so a file is never held in memory. ``stream`` returns a
:class:`StreamProgress` when every line was acknowledged, or raises:

- :class:`~laserd.grbl.errors.GrblError` on the first ``error:N`` (``lineno``, ``line``,
  ``grbl_code``, ``meaning``); no further line is sent (lines already in the controller's
  buffer still run: call :meth:`GrblLink.cancel` to stop them);
- :class:`~laserd.grbl.errors.LineRefused` for a line that cannot be sent safely;
- :class:`~laserd.grbl.errors.GrblAlarm` when ``ALARM:N`` arrives;
- :class:`~laserd.grbl.errors.LinkDown` at once when the port is lost;
- :class:`~laserd.grbl.errors.ControllerReset` when the controller resets underneath (e.g.
  the safety supervisor sent 0x18);
- :class:`~laserd.grbl.errors.StreamCancelled` after :meth:`GrblLink.cancel`.

``pause()`` sends feed hold, ``resume()`` cycle start (only ever on a person's request);
``cancel()`` sends feed hold, waits for the hold to complete (``Hold:0``), soft-resets, waits
for the banner and leaves the queue empty and the state consistent. Only one stream runs at
a time (a second one raises :class:`~laserd.errors.MachineBusy`).

Commands: ``await link.command(line)`` returns the lines received between sending it and its
``ok`` (``$$`` settings, ``[GC:...]``, ``[MSG:...]``); an unsolicited push message that arrives
meanwhile (e.g. ``[MSG:'$H'|'$X' to unlock]`` right after a reset) lands there too, so look
for what you expect rather than at a fixed position.

Keeping the count in step with the controller: after opening the port or any soft reset
(ours, or 0x18 written by the safety supervisor from its thread) no line is sent until the
banner; lines in flight at a reset are failed (``ControllerReset``); commands queued while
waiting go out after the banner. After ``ALARM:N`` the lines in flight stay counted until
they are answered (``error:9``) or the line stays quiet for ``_settle_s`` (GRBL flushed them).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import threading
from collections import deque
from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

import serial

from laserd.errors import MachineBusy
from laserd.events import EventHub
from laserd.grbl.counting import CharCounter
from laserd.grbl.errors import (
    ControllerReset,
    GrblAlarm,
    GrblError,
    LineRefused,
    LinkDown,
    LinkTimeout,
    StreamCancelled,
)
from laserd.grbl.protocol import (
    MOVING_STATES,
    RT,
    AlarmMsg,
    Banner,
    BuildOptions,
    ErrorReply,
    MachineState,
    MachineStatus,
    Overrides,
    SettingLine,
    StatusReport,
    StatusTracker,
    VersionInfo,
    normalise_line,
    parse_line,
)
from laserd.grbl.serial_io import QuietCloseTransport, SerialLineProtocol, write_all
from laserd.grbl.stream import (
    READ_AHEAD_LINES,
    QueuedLine,
    StreamProgress,
    StreamState,
    iter_file_lines,
)

log = logging.getLogger(__name__)

__all__ = ["GrblLink", "LineListener", "StreamProgress", "iter_file_lines"]

LineListener = Callable[[str, str], None]
_SET_RE = re.compile(r"^\$(\d+)=(.*)$")


class GrblLink:
    """Serial link to one GRBL controller. See the module docstring for the whole API."""

    def __init__(
        self,
        port: str,
        baudrate: int = 115200,
        rx_buffer_bytes: int = 128,
        status_hz_idle: float = 5.0,
        status_hz_running: float = 10.0,
        reconnect_s: float = 2.0,
        hub: EventHub | None = None,
        autoconnect: bool = True,
        *,
        banner_timeout_s: float = 2.5,
        reset_timeout_s: float = 5.0,
        learn_rx_buffer: bool = True,
    ) -> None:
        self._port = port
        self._baudrate = baudrate
        self._hub = hub
        self._autoconnect = autoconnect
        self._reconnect_s = reconnect_s
        self._idle_period_s = 1.0 / status_hz_idle
        self._running_period_s = 1.0 / status_hz_running
        self._banner_timeout_s = banner_timeout_s
        self._reset_timeout_s = reset_timeout_s
        self._learn_rx = learn_rx_buffer
        self._rx_learned = False

        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._transport: QuietCloseTransport | None = None
        self._protocol: SerialLineProtocol | None = None
        self._fd: int | None = None
        self._fd_lock = threading.Lock()

        self._counter: CharCounter[QueuedLine] = CharCounter(rx_buffer_bytes)
        self._pending: deque[QueuedLine] = deque()
        self._stream: StreamState | None = None
        #: Lines are held back until the controller is known to be in step with our counting:
        #: after opening the port or a soft reset, until its banner (``_awaiting_banner``);
        #: after an alarm, until what was in flight is answered or given up (``_settling``).
        self._awaiting_banner = True
        self._settling = False
        self._settle_handle: asyncio.TimerHandle | None = None
        #: After an alarm, how long without answers before lines in flight count as lost.
        self._settle_s = 0.5
        #: Soft resets written (any thread) and answered by a banner, to order the two.
        self._resets_sent = 0
        self._resets_answered = 0

        self._state = MachineState.DISCONNECTED
        self._tracker = StatusTracker()
        #: Status reports that carried ``Ov:`` (GRBL sends it on a change, else now and then).
        self._ov_reports = 0
        self._firmware: str | None = None
        self._version: str | None = None
        self._settings: dict[str, str] = {}
        self._alarm: tuple[int, str] | None = None
        self._build_options: BuildOptions | None = None

        self._banner_waiter: asyncio.Future[Banner] | None = None
        self._status_waiters: list[tuple[Callable[[MachineStatus], bool], asyncio.Future]] = []
        self._listeners: list[tuple[LineListener, bool, bool]] = []
        self._snapshot_providers: list[Callable[[], dict[str, Any]]] = []

        self._want_connected = autoconnect
        self._wake = asyncio.Event()
        self._connected_event = asyncio.Event()
        self._attempt_waiters: list[asyncio.Future[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._closing = False
        self._failures = 0

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> str:
        return self._port

    @property
    def connected(self) -> bool:
        return self._fd is not None and self._state not in (
            MachineState.DISCONNECTED, MachineState.CONNECTING)

    @property
    def state(self) -> str:
        return str(self._state)

    @property
    def status(self) -> MachineStatus | None:
        """The last status report, completed with remembered WCO/overrides; None before one."""
        return self._tracker.last

    @property
    def firmware(self) -> str | None:
        return self._firmware

    @property
    def settings(self) -> dict[str, str]:
        """Controller settings from ``$$`` (``{"$30": "1000", ...}``), kept current when a
        ``$N=value`` command succeeds through :meth:`command`."""
        return dict(self._settings)

    @property
    def alarm(self) -> dict[str, Any] | None:
        if self._alarm is None:
            return None
        return {"code": self._alarm[0], "message": self._alarm[1]}

    @property
    def rx_buffer_bytes(self) -> int:
        return self._counter.capacity

    @property
    def build_options(self) -> BuildOptions | None:
        return self._build_options

    @property
    def streaming(self) -> bool:
        return self._stream is not None and self._stream.active

    @property
    def bytes_in_flight(self) -> int:
        return self._counter.used

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the connect/reconnect supervisor (it connects now when ``autoconnect``)."""
        self._bind_loop()
        if self._supervisor is None or self._supervisor.done():
            self._closing = False
            self._supervisor = asyncio.create_task(self._supervise(), name="grbl-link")

    async def close(self) -> None:
        """Stop reconnecting, fail whatever is in flight and close the port."""
        self._closing = True
        self._want_connected = False
        self._wake.set()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        self._drop(LinkDown("The link was closed."))
        await asyncio.sleep(0)  # let the transport close the port before the loop may end

    async def connect(self, timeout_s: float = 15.0) -> None:
        """Open the port now (and keep it open across unplugs). Raises LinkDown if the next
        attempt fails."""
        self._want_connected = True
        await self.start()
        if self.connected:
            return
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._attempt_waiters.append(fut)
        self._wake.set()
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise LinkTimeout(f"Could not connect to {self._port} in {timeout_s:.0f} s.") from None

    async def disconnect(self) -> None:
        """Close the port and stay disconnected until :meth:`connect`."""
        self._want_connected = False
        self._wake.set()
        self._drop(LinkDown("The link was disconnected on request."))

    # ------------------------------------------------------------------ real-time bytes

    def realtime(self, byte: int | bytes) -> bool:
        """Send one real-time byte at once, bypassing the queue and asyncio. Thread-safe.

        Callable from any thread (a gpiozero callback) even while the event loop is stalled:
        it is a single ``os.write`` on the port's file descriptor. Returns False (and does
        nothing) when not connected or the write failed.
        """
        value = byte[0] if isinstance(byte, bytes | bytearray) else int(byte)
        data = bytes((value,))
        with self._fd_lock:
            fd = self._fd
            if fd is None:
                return False
            if value == RT.RESET:
                # From this instant no queued line may follow the reset onto the wire: the
                # controller would run it after restarting (see _write). Set under the fd
                # lock, so a write already in progress on the loop thread finishes first.
                self._awaiting_banner = True
                self._resets_sent += 1
                seq = self._resets_sent
            try:
                written = write_all(fd, data)
            except OSError as exc:
                log.warning("real-time byte 0x%02x not written: %s", value, exc)
                return False
        if value == RT.RESET and written:
            self._call_on_loop(functools.partial(self._note_reset_sent, seq))
        return written

    def pause(self) -> bool:
        """Feed hold (decelerates to a stop; resumable). Lines keep filling the buffer."""
        return self.realtime(RT.HOLD)

    def resume(self) -> bool:
        """Cycle start after a hold. Only call this on a person's request."""
        return self.realtime(RT.RESUME)

    def send_override_reset(self) -> bool:
        """Feed, spindle/laser power and rapid overrides back to 100 % (0x90, 0x99, 0x95)."""
        sent = [self.realtime(b) for b in (RT.FEED_100, RT.POWER_100, RT.RAPID_100)]
        return all(sent)

    async def reset_overrides(self, timeout_s: float, poll_s: float = 0.05) -> Overrides | None:
        """Reset the overrides to 100 % and wait for a status report that says so.

        Only a report that carries ``Ov:`` and arrived after the reset bytes counts (the
        tracker's remembered values could be from before). GRBL includes ``Ov:`` at once when
        a value changed, otherwise every 10-20 reports, so this polls ``?`` every ``poll_s``
        until it sees 100/100/100 or ``timeout_s`` runs out. Returns the overrides of the
        last such report (``Overrides()`` when confirmed), or None when no report within the
        time carried ``Ov:`` at all. Raises LinkDown when the link is or goes down.
        """
        if self._fd is None or self._loop is None:
            raise LinkDown()
        seen = self._ov_reports
        if not self.send_override_reset():
            raise LinkDown()
        target = Overrides()
        deadline = self._loop.time() + timeout_s
        while True:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                break
            try:
                await self.wait_for_status(
                    lambda s: self._ov_reports > seen and s.overrides == target,
                    min(poll_s, remaining),
                )
                return target
            except TimeoutError:
                continue
        return self._tracker.overrides if self._ov_reports > seen else None

    # ------------------------------------------------------------------ commands

    async def command(self, line: str, timeout_s: float = 10.0) -> list[str]:
        """Send one line through the counted queue; return the reply lines before its ``ok``.

        Raises LineRefused (unsafe line), GrblError (``error:N``), GrblAlarm, LinkDown,
        ControllerReset or LinkTimeout (the line stays accounted until its answer arrives).
        """
        text = normalise_line(line)
        if self._fd is None or self._loop is None:
            raise LinkDown()
        fut: asyncio.Future[list[str]] = self._loop.create_future()
        self._enqueue(QueuedLine(text, future=fut))
        try:
            replies = await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            fut.cancel()
            raise LinkTimeout(f"No answer to {text!r} within {timeout_s:g} s.") from None
        m = _SET_RE.match(text)
        if m:
            self._settings[f"${m.group(1)}"] = m.group(2)
        return replies

    async def wait_for_status(
        self, predicate: Callable[[MachineStatus], bool], timeout_s: float
    ) -> MachineStatus:
        """Wait for a status report that satisfies ``predicate``; polls ``?`` meanwhile.

        Raises TimeoutError when none comes in time, LinkDown when the link is or goes down.
        """
        if self._fd is None or self._loop is None:
            raise LinkDown()
        fut: asyncio.Future[MachineStatus] = self._loop.create_future()
        entry = (predicate, fut)
        self._status_waiters.append(entry)
        self.realtime(RT.STATUS)
        try:
            return await asyncio.wait_for(fut, timeout_s)
        finally:
            with contextlib.suppress(ValueError):
                self._status_waiters.remove(entry)

    async def reset(self, timeout_s: float | None = None) -> None:
        """Soft reset (0x18) and wait for the banner. Everything queued is discarded."""
        if self._fd is None or self._loop is None:
            raise LinkDown()
        waiter = self._new_banner_waiter()
        if not self.realtime(RT.RESET):
            raise LinkDown()
        try:
            await asyncio.wait_for(waiter, timeout_s or self._reset_timeout_s)
        except TimeoutError:
            raise LinkTimeout("The controller did not restart after a soft reset.") from None

    # ------------------------------------------------------------------ streaming

    async def stream(
        self,
        lines: Iterable[tuple[int, str]] | AsyncIterable[tuple[int, str]],
        *,
        on_progress: Callable[[StreamProgress], None] | None = None,
        progress_interval_s: float = 0.25,
    ) -> StreamProgress:
        """Stream ``(lineno, text)`` lines with character counting. See the module docstring."""
        if self._fd is None or self._loop is None:
            raise LinkDown()
        if self.streaming:
            raise MachineBusy("Another stream is running.")
        st = StreamState(self._loop, on_progress, progress_interval_s)
        self._stream = st
        producer = asyncio.create_task(self._produce(st, lines), name="grbl-stream-producer")
        self._kick_poller()
        try:
            return await asyncio.shield(st.done)
        except asyncio.CancelledError:
            st.fail(StreamCancelled())
            raise
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
            if self._stream is st:
                self._stream = None
            if st.done.done() and not st.done.cancelled():
                st.done.exception()  # mark retrieved: the caller got it or was cancelled
            # Items of this stream still queued (not yet sent) are dropped; those in flight
            # stay counted until the controller answers them.
            if self._pending:
                self._pending = deque(i for i in self._pending if i.stream is not st)

    async def _produce(
        self, st: StreamState, lines: Iterable[tuple[int, str]] | AsyncIterable[tuple[int, str]]
    ) -> None:
        skipped = 0
        try:
            if isinstance(lines, AsyncIterable):
                async for lineno, text in lines:
                    if not st.active:
                        return
                    skipped = self._offer(st, lineno, text, skipped)
                    while len(st.buf) >= READ_AHEAD_LINES and st.active:
                        st.need_more.clear()
                        await st.need_more.wait()
            else:
                for lineno, text in lines:
                    if not st.active:
                        return
                    skipped = self._offer(st, lineno, text, skipped)
                    while len(st.buf) >= READ_AHEAD_LINES and st.active:
                        st.need_more.clear()
                        await st.need_more.wait()
        except LineRefused as exc:
            st.fail(exc)
            return
        except Exception as exc:  # a failing reader fails the stream, not the link
            log.exception("stream source failed")
            st.fail(exc)
            return
        if st.active:
            # Trailing blank/comment lines count as sent now and as done at the end.
            st.progress.lines_sent += skipped
            st.trailing = skipped
            st.exhausted = True
            st.maybe_finish()

    def _offer(self, st: StreamState, lineno: int, text: str, skipped: int) -> int:
        norm = normalise_line(text, lineno=lineno)
        if not norm:
            return skipped + 1
        item = QueuedLine(norm, stream=st, lineno=lineno, consumed=skipped + 1)
        if len(item.data) > self._counter.capacity:
            raise LineRefused(
                f"line does not fit the controller's {self._counter.capacity}-byte buffer",
                line=text, lineno=lineno)
        st.buf.append(item)
        self._pump()
        return 0

    async def cancel(self, hold_timeout_s: float = 10.0) -> None:
        """Stop the running stream and motion cleanly: feed hold, wait for ``Hold:0``, soft
        reset, wait for the banner. The queue is empty and the state consistent afterwards.

        If the hold does not complete in time the reset is sent anyway (stopping is what
        matters; GRBL may then report ALARM:3 because motion was interrupted).
        """
        st = self._stream
        if st is not None:
            st.fail(StreamCancelled())
        if self._fd is None:
            return
        self.realtime(RT.HOLD)
        try:
            await self.wait_for_status(
                lambda s: (s.state == MachineState.HOLD and s.substate == 0)
                or s.state in (MachineState.ALARM, MachineState.DOOR)
                or (s.state == MachineState.IDLE and self._counter.used == 0),
                hold_timeout_s,
            )
        except TimeoutError:
            log.warning("feed hold did not complete within %.1f s; resetting anyway",
                        hold_timeout_s)
        await self.reset()

    # ------------------------------------------------------------------ listeners, snapshot

    def add_line_listener(
        self, fn: LineListener, *, include_status: bool = False, include_stream: bool = False
    ) -> None:
        """Call ``fn(direction, line)`` for raw lines: ``"rx"`` received, ``"tx"`` sent.

        Status reports and streamed job lines (and their ``ok``) are left out unless asked
        for, so an admin console is not flooded. Called on the event loop; keep it quick.
        """
        self._listeners.append((fn, include_status, include_stream))

    def remove_line_listener(self, fn: LineListener) -> None:
        self._listeners = [entry for entry in self._listeners if entry[0] is not fn]

    def add_snapshot_provider(self, fn: Callable[[], dict[str, Any]]) -> None:
        """Merge ``fn()`` (e.g. interlocks, job) into every published ``machine`` event."""
        self._snapshot_providers.append(fn)

    def snapshot(self) -> dict[str, Any]:
        """The link's part of ``GET /machine`` (API.md)."""
        status = self._tracker.last
        connected = self.connected
        snap: dict[str, Any] = {
            "state": str(self._state),
            "connected": connected,
            "port": self._port,
            "firmware": self._firmware,
            "mpos": None,
            "wpos": None,
            "feed": None,
            "power": None,
            "overrides": None,
            "buffer": None,
            "alarm": self.alarm,
        }
        if status is not None and connected:
            snap.update(
                mpos=status.mpos.as_dict(),
                wpos=status.wpos.as_dict(),
                feed=status.feed,
                power=status.power,
                overrides=status.overrides.as_dict(),
                buffer={"planner": status.planner_free, "rx": status.rx_free},
            )
        return snap

    # ------------------------------------------------------------------ internals: queue

    def _enqueue(self, item: QueuedLine) -> None:
        if len(item.data) > self._counter.capacity:
            raise LineRefused(
                f"line does not fit the controller's {self._counter.capacity}-byte buffer",
                line=item.text)
        self._pending.append(item)
        self._pump()

    def _pump(self) -> None:
        """Send as many queued lines as fit the controller's buffer, in one write."""
        if self._awaiting_banner or self._settling or self._fd is None:
            return
        counter = self._counter
        chunks: list[bytes] = []
        sent: list[QueuedLine] = []
        pending = self._pending
        st = self._stream
        while True:
            if pending:
                item = pending[0]
                if item.future is not None and item.future.done():
                    pending.popleft()  # timed out or cancelled before it was sent
                    continue
                source: deque[QueuedLine] = pending
            elif st is not None and st.buf:
                item = st.buf[0]
                source = st.buf
            else:
                break
            if not counter.fits(len(item.data)):
                break
            source.popleft()
            counter.push(len(item.data), item)
            chunks.append(item.data)
            sent.append(item)
            if item.stream is not None:
                s = item.stream
                s.outstanding += 1
                s.progress.lines_sent += item.consumed
                s.progress.bytes_sent += len(item.data)
        if not chunks:
            return
        data = b"".join(chunks)
        self._write(data)
        if st is not None and len(st.buf) < READ_AHEAD_LINES // 2:
            st.need_more.set()
        if self._listeners:
            for item in sent:
                self._notify("tx", item.text, stream=item.stream is not None)

    def _write(self, data: bytes) -> None:
        """Write without a trip through the loop when the transport has nothing buffered."""
        transport = self._transport
        if transport is None:
            return
        if transport.get_write_buffer_size() == 0:
            with self._fd_lock:
                fd = self._fd
                if fd is None or self._awaiting_banner:
                    # A reset was written from another thread since _pump looked: these
                    # lines belong to the old session and are failed by _note_reset_sent.
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

    # ------------------------------------------------------------------ internals: receive

    def _on_line(self, line: str) -> None:
        if line == "ok":
            if self._listeners:
                oldest = self._counter.oldest()
                self._notify("rx", line, stream=oldest is not None and oldest.stream is not None)
            self._ack(None)
            return
        msg = parse_line(line)
        if isinstance(msg, StatusReport):
            self._on_status(msg)
            if self._listeners:
                self._notify("rx", line, status=True)
            return
        if self._listeners:
            oldest = self._counter.oldest()
            self._notify("rx", line, stream=oldest is not None and oldest.stream is not None)
        if isinstance(msg, ErrorReply):
            self._ack(msg)
        elif isinstance(msg, AlarmMsg):
            self._on_alarm(msg)
        elif isinstance(msg, Banner):
            self._on_banner(msg)
        else:
            oldest = self._counter.oldest()
            if oldest is not None and oldest.replies is not None:
                oldest.replies.append(line)
            if isinstance(msg, SettingLine) and not msg.name.startswith("N"):
                self._settings[f"${msg.name}"] = msg.value
            elif isinstance(msg, BuildOptions):
                self._build_options = msg
                if self._learn_rx and msg.rx_buffer_bytes:
                    self._set_rx_capacity(msg.rx_buffer_bytes, "[OPT:]")
            elif isinstance(msg, VersionInfo):
                self._version = msg.version
                self._firmware = f"Grbl {msg.version}"

    def _end_settling(self) -> None:
        self._settling = False
        if self._settle_handle is not None:
            self._settle_handle.cancel()
            self._settle_handle = None

    def _ack(self, error: ErrorReply | None) -> None:
        item = self._counter.pop()
        if self._settling:
            # After an alarm: answers to lines that were failed already.
            if len(self._counter) == 0:
                self._end_settling()
                self._pump()
            else:
                self._arm_settle()
            return
        if item is None:
            if error is not None:
                log.info("error:%d with nothing in flight (a late answer)", error.code)
            self._pump()
            return
        st = item.stream
        if st is not None:
            if st.active:
                st.outstanding -= 1
                if error is None:
                    st.progress.lines_acked += item.consumed
                    st.progress.last_lineno = item.lineno
                    if st.on_progress is not None:
                        st.report()
                    if st.exhausted:
                        st.maybe_finish()
                else:
                    st.fail(GrblError(error.code, error.meaning, item.text, item.lineno))
        elif item.future is not None and not item.future.done():
            if error is None:
                item.future.set_result(item.replies or [])
            else:
                item.future.set_exception(GrblError(error.code, error.meaning, item.text))
        self._pump()

    def _on_status(self, report: StatusReport) -> None:
        status = self._tracker.update(report)
        if report.overrides is not None:
            self._ov_reports += 1
        if self._state not in (MachineState.DISCONNECTED, MachineState.CONNECTING):
            self._state = status.state
        if status.state != MachineState.ALARM and self._alarm is not None:
            self._alarm = None  # unlocked or homed
        if (
            self._learn_rx
            and not self._rx_learned
            and report.rx_free
            and status.state == MachineState.IDLE
            and self._counter.used == 0
        ):
            self._set_rx_capacity(report.rx_free, "Bf:")
        for entry in tuple(self._status_waiters):
            predicate, fut = entry
            if not fut.done() and predicate(status):
                fut.set_result(status)
        self._publish()

    def _on_alarm(self, msg: AlarmMsg) -> None:
        log.warning("controller alarm %d: %s", msg.code, msg.meaning)
        self._alarm = (msg.code, msg.meaning)
        if self._state not in (MachineState.DISCONNECTED, MachineState.CONNECTING):
            self._state = MachineState.ALARM
        self._tracker.with_state(MachineState.ALARM)
        # Whatever waited on the stream or a command fails now. The lines already in flight
        # may still be answered (error:9 for each, when the alarm left the receive buffer
        # alone) or never (when GRBL reset itself and flushed it). Keep counting them and hold
        # the queue until they are answered or the line goes quiet, so that no late answer
        # can be matched to a new line.
        self._fail_all(GrblAlarm(msg.code, msg.meaning), keep_inflight=True)
        if len(self._counter):
            self._settling = True
            self._arm_settle()
        self.realtime(RT.STATUS)
        self._publish()

    def _arm_settle(self) -> None:
        if self._settle_handle is not None:
            self._settle_handle.cancel()
        assert self._loop is not None
        self._settle_handle = self._loop.call_later(self._settle_s, self._settled)

    def _settled(self) -> None:
        """No answer for a while after an alarm: whatever is still counted will never be."""
        self._settle_handle = None
        if not self._settling:
            return
        self._settling = False
        stale = self._counter.clear()
        if stale:
            log.info("alarm: %d line(s) in flight were discarded by the controller", len(stale))
        self._pump()

    def _on_banner(self, msg: Banner) -> None:
        log.info("controller banner: %s", msg.raw)
        self._firmware = self._firmware if self._version else f"Grbl {msg.version}"
        self._tracker.reset()
        # Whether we reset it or it reset itself (safety supervisor, button, power blip),
        # its buffers are empty now: counting starts again from zero. Commands queued since
        # a reset we sent (none were sent yet) go out now.
        self._fail_all(ControllerReset(), keep_pending=True)
        self._awaiting_banner = False
        self._resets_answered = self._resets_sent
        waiter = self._banner_waiter
        self._banner_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(msg)
        self._pump()
        self.realtime(RT.STATUS)

    def _note_reset_sent(self, seq: int) -> None:
        """A soft reset went out: GRBL discards its buffers, so must we (until the banner).

        From another thread this runs a little later on the loop, possibly after the banner
        that answered the reset was already handled; then there is nothing left to do.
        """
        if self._fd is None or seq <= self._resets_answered:
            return
        self._fail_all(ControllerReset())
        self._awaiting_banner = True

    def _fail_all(
        self, exc: Exception, *, keep_inflight: bool = False, keep_pending: bool = False
    ) -> None:
        """Fail the stream and the commands in flight (unless ``keep_inflight``: they stay
        counted) and those not sent yet (unless ``keep_pending``)."""
        st = self._stream
        if st is not None:
            st.fail(exc)
        if not keep_inflight:
            self._end_settling()
        inflight = self._counter.items() if keep_inflight else self._counter.clear()
        for item in inflight:
            if item.future is not None and not item.future.done():
                item.future.set_exception(exc)
        if keep_pending:
            return
        for item in self._pending:
            if item.future is not None and not item.future.done():
                item.future.set_exception(exc)
        self._pending.clear()

    def _set_rx_capacity(self, size: int, source: str) -> None:
        self._rx_learned = True
        if size != self._counter.capacity and 16 <= size <= 65536:
            log.info("controller receive buffer: %d bytes (from %s)", size, source)
            self._counter.capacity = size

    def _publish(self) -> None:
        if self._hub is None:
            return
        snap = self.snapshot()
        for provider in self._snapshot_providers:
            try:
                snap.update(provider())
            except Exception:
                log.exception("snapshot provider failed")
        self._hub.publish("machine", snap)

    def _notify(self, direction: str, line: str, *, status: bool = False,
                stream: bool = False) -> None:
        for fn, want_status, want_stream in self._listeners:
            if (status and not want_status) or (stream and not want_stream):
                continue
            try:
                fn(direction, line)
            except Exception:
                log.exception("line listener failed")

    # ------------------------------------------------------------------ internals: connection

    def _bind_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()

    def _call_on_loop(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                loop.call_soon_threadsafe(fn)

    def _new_banner_waiter(self) -> asyncio.Future[Banner]:
        assert self._loop is not None
        if self._banner_waiter is not None and not self._banner_waiter.done():
            return self._banner_waiter
        self._banner_waiter = self._loop.create_future()
        return self._banner_waiter

    async def _supervise(self) -> None:
        while not self._closing:
            if not self._want_connected:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Say it once at WARNING; an unplugged port is retried quietly after that.
                self._failures += 1
                level = logging.WARNING if self._failures == 1 else logging.DEBUG
                log.log(level, "cannot connect to %s: %s (retrying every %.1f s)",
                        self._port, exc, self._reconnect_s)
                self._drop(exc if isinstance(exc, LinkDown) else LinkDown(str(exc)))
                self._resolve_attempts(exc)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._reconnect_s)
                continue
            self._failures = 0
            self._resolve_attempts(None)
            # Connected: wait until the link drops or a disconnect is requested.
            while self._fd is not None and self._want_connected and not self._closing:
                self._wake.clear()
                await self._wake.wait()
            if self._fd is not None:
                self._drop(LinkDown("The link was disconnected on request."))
            elif self._want_connected and not self._closing:
                with contextlib.suppress(TimeoutError):
                    self._wake.clear()
                    await asyncio.wait_for(self._wake.wait(), self._reconnect_s)

    def _resolve_attempts(self, exc: BaseException | None) -> None:
        waiters, self._attempt_waiters = self._attempt_waiters, []
        for fut in waiters:
            if fut.done():
                continue
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc if isinstance(exc, LinkDown) else LinkDown(
                    f"Cannot connect to {self._port}: {exc}"))

    async def _open(self) -> None:
        assert self._loop is not None
        self._state = MachineState.CONNECTING
        self._publish()
        ser = await self._loop.run_in_executor(
            None, functools.partial(serial.serial_for_url, self._port,
                                    baudrate=self._baudrate, exclusive=True))
        protocol = SerialLineProtocol(self._on_line, self._on_lost)
        self._awaiting_banner = True
        self._end_settling()
        self._counter.clear()
        self._rx_learned = False
        self._protocol = protocol
        self._transport = QuietCloseTransport(self._loop, protocol, ser)
        with self._fd_lock:
            self._fd = ser.fd
        log.info("opened %s at %d baud", self._port, self._baudrate)
        # The controller's state is unknown after opening: boards that reset on open print
        # their banner; others need a soft reset to get to a known state.
        waiter = self._new_banner_waiter()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self._banner_timeout_s)
        except TimeoutError:
            log.info("no banner from %s; sending soft reset", self._port)
            if not self.realtime(RT.RESET):
                raise LinkDown("The port closed during the handshake.") from None
            try:
                await asyncio.wait_for(waiter, self._reset_timeout_s)
            except TimeoutError:
                raise LinkTimeout(f"No GRBL banner from {self._port}.") from None
        for line in ("$$", "$I"):
            try:
                await self.command(line, timeout_s=5.0)
            except GrblError as exc:
                log.warning("%s refused during handshake: %s", line, exc.meaning)
        try:
            status = await self.wait_for_status(lambda s: True, timeout_s=5.0)
        except TimeoutError:
            # Unknown counts as unsafe: a controller that will not report its state is not
            # "idle"; drop the connection and let the supervisor try again.
            raise LinkTimeout(f"No status report from {self._port} after connecting.") from None
        self._state = status.state
        self._connected_event.set()
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="grbl-status-poll")
        log.info("connected to %s (%s), state %s, rx buffer %d bytes",
                 self._port, self._firmware, self._state, self._counter.capacity)
        self._publish()

    def _on_lost(self, protocol: SerialLineProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        if not self._closing and self._want_connected:
            log.warning("lost %s: %s", self._port, exc or "closed")
        self._drop(LinkDown(f"The link to {self._port} was lost."))
        self._wake.set()

    def _drop(self, exc: Exception) -> None:
        """Close the port (if open) and fail everything that was waiting on it."""
        with self._fd_lock:
            self._fd = None
        transport, self._transport = self._transport, None
        self._protocol = None
        if transport is not None:
            transport.abort()
        self._awaiting_banner = True
        self._connected_event.clear()
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        waiter, self._banner_waiter = self._banner_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc if isinstance(exc, LinkDown) else LinkDown(str(exc)))
            waiter.exception()  # retrieved: nobody may be waiting any more
        self._fail_all(exc)
        for _, fut in self._status_waiters:
            if not fut.done():
                fut.set_exception(LinkDown())
        changed = self._state != MachineState.DISCONNECTED
        self._state = MachineState.DISCONNECTED
        if changed:
            self._publish()

    def _kick_poller(self) -> None:
        """Streaming started: poll at the running rate from now on."""
        self.realtime(RT.STATUS)

    async def _poll(self) -> None:
        while self._fd is not None:
            running = self.streaming or self._state in MOVING_STATES
            self.realtime(RT.STATUS)
            await asyncio.sleep(self._running_period_s if running else self._idle_period_s)
