"""Character counting: the queue of lines to a GRBL controller, the pump, answers and streams.

:class:`Sender` decides which line goes out when. Every line (commands, jog, job lines) goes
through one FIFO queue — commands first, then the running stream's read-ahead buffer — and
is written only while the bytes in flight fit the controller's receive buffer; each ``ok``
or ``error:N`` frees the oldest line (:meth:`Sender.ack`).

Keeping the count in step with the controller: after opening the port or any soft reset no
line is written until the banner (the connection's gate); lines in flight at a reset are
failed (``ControllerReset``); commands queued meanwhile go out after the banner. After
``ALARM:N`` the lines in flight stay counted until they are answered (``error:9``) or the
line stays quiet for ``settle_s`` (GRBL flushed them): no late answer can be matched to a
new line.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterable, Callable, Iterable

from laserd.errors import MachineBusy
from laserd.grbl.connection import SerialConnection
from laserd.grbl.counting import CharCounter
from laserd.grbl.errors import ControllerReset, GrblError, LineRefused, StreamCancelled
from laserd.grbl.protocol import ErrorReply, normalise_line
from laserd.grbl.stream import READ_AHEAD_LINES, QueuedLine, StreamProgress, StreamState

log = logging.getLogger(__name__)

Lines = Iterable[tuple[int, str]] | AsyncIterable[tuple[int, str]]


class Sender:
    """The counted queue over one :class:`SerialConnection`. Loop-thread only."""

    def __init__(self, conn: SerialConnection, rx_buffer_bytes: int) -> None:
        self._conn = conn
        self.counter: CharCounter[QueuedLine] = CharCounter(rx_buffer_bytes)
        self._pending: deque[QueuedLine] = deque()
        self.stream: StreamState | None = None
        #: After an alarm: lines in flight are held until answered or given up.
        self._settling = False
        self._settle_handle: asyncio.TimerHandle | None = None
        #: After an alarm, how long without answers before lines in flight count as lost.
        self.settle_s = 0.5
        #: Called with the lines just written (for the console's view of the wire).
        self.on_sent: Callable[[list[QueuedLine]], None] | None = None

    @property
    def capacity(self) -> int:
        return self.counter.capacity

    @property
    def streaming(self) -> bool:
        return self.stream is not None and self.stream.active

    def oldest(self) -> QueuedLine | None:
        return self.counter.oldest()

    # ------------------------------------------------------------------ queue

    def enqueue(self, item: QueuedLine) -> None:
        if len(item.data) > self.counter.capacity:
            raise LineRefused(
                f"line does not fit the controller's {self.counter.capacity}-byte buffer",
                line=item.text)
        self._pending.append(item)
        self.pump()

    def pump(self) -> None:
        """Send as many queued lines as fit the controller's buffer, in one write."""
        if self._conn.gate_closed or self._settling or self._conn.fd is None:
            return
        counter = self.counter
        chunks: list[bytes] = []
        sent: list[QueuedLine] = []
        pending = self._pending
        st = self.stream
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
        self._conn.write(b"".join(chunks))
        if st is not None and len(st.buf) < READ_AHEAD_LINES // 2:
            st.need_more.set()
        if self.on_sent is not None:
            self.on_sent(sent)

    # ------------------------------------------------------------------ answers

    def ack(self, error: ErrorReply | None) -> None:
        """``ok`` (``error`` None) or ``error:N``: the oldest line in flight is answered."""
        item = self.counter.pop()
        if self._settling:
            # After an alarm: answers to lines that were failed already.
            if len(self.counter) == 0:
                self._end_settling()
                self.pump()
            else:
                self._arm_settle()
            return
        if item is None:
            if error is not None:
                log.info("error:%d with nothing in flight (a late answer)", error.code)
        elif item.stream is not None:
            _answer_stream_line(item, error)
        elif item.future is not None and not item.future.done():
            if error is None:
                item.future.set_result(item.replies or [])
            else:
                item.future.set_exception(GrblError(error.code, error.meaning, item.text))
        self.pump()

    def reply(self, line: str) -> None:
        """A reply line (``$$`` setting, ``[GC:...]``) for the command waiting on its ``ok``."""
        oldest = self.counter.oldest()
        if oldest is not None and oldest.replies is not None:
            oldest.replies.append(line)

    # ------------------------------------------------------------------ controller events

    def new_session(self) -> None:
        """The port was (re)opened: nothing is in flight on this new session."""
        self._end_settling()
        self.counter.clear()

    def alarm(self, exc: Exception) -> None:
        """``ALARM:N``: fail what waits, keep counting what is in flight until it settles."""
        self.fail_all(exc, keep_inflight=True)
        if len(self.counter):
            self._settling = True
            self._arm_settle()

    def banner(self) -> None:
        """The controller (re)started: its buffers are empty, counting starts from zero.
        Commands queued since a reset we sent (none were sent yet) go out now."""
        self.fail_all(ControllerReset(), keep_pending=True)
        self._conn.banner_seen()
        self.pump()

    def reset_written(self, seq: int) -> None:
        """A soft reset went out: GRBL discards its buffers, so must we (until the banner).

        From another thread this runs a little later on the loop, possibly after the banner
        that answered the reset was already handled; then there is nothing left to do.
        """
        if not self._conn.reset_pending(seq):
            return
        self.fail_all(ControllerReset())
        self._conn.gate_closed = True

    def fail_all(
        self, exc: Exception, *, keep_inflight: bool = False, keep_pending: bool = False
    ) -> None:
        """Fail the stream and the commands in flight (unless ``keep_inflight``: they stay
        counted) and those not sent yet (unless ``keep_pending``)."""
        st = self.stream
        if st is not None:
            st.fail(exc)
        if not keep_inflight:
            self._end_settling()
        inflight = self.counter.items() if keep_inflight else self.counter.clear()
        for item in inflight:
            if item.future is not None and not item.future.done():
                item.future.set_exception(exc)
        if keep_pending:
            return
        for item in self._pending:
            if item.future is not None and not item.future.done():
                item.future.set_exception(exc)
        self._pending.clear()

    def set_capacity(self, size: int, source: str) -> None:
        if size != self.counter.capacity and 16 <= size <= 65536:
            log.info("controller receive buffer: %d bytes (from %s)", size, source)
            self.counter.capacity = size

    def _end_settling(self) -> None:
        self._settling = False
        if self._settle_handle is not None:
            self._settle_handle.cancel()
            self._settle_handle = None

    def _arm_settle(self) -> None:
        if self._settle_handle is not None:
            self._settle_handle.cancel()
        assert self._conn.loop is not None
        self._settle_handle = self._conn.loop.call_later(self.settle_s, self._settled)

    def _settled(self) -> None:
        """No answer for a while after an alarm: whatever is still counted will never be."""
        self._settle_handle = None
        if not self._settling:
            return
        self._settling = False
        stale = self.counter.clear()
        if stale:
            log.info("alarm: %d line(s) in flight were discarded by the controller", len(stale))
        self.pump()

    # ------------------------------------------------------------------ streams

    def begin_stream(
        self,
        on_progress: Callable[[StreamProgress], None] | None,
        progress_interval_s: float,
    ) -> StreamState:
        if self.streaming:
            raise MachineBusy("Another stream is running.")
        assert self._conn.loop is not None
        st = StreamState(self._conn.loop, on_progress, progress_interval_s)
        self.stream = st
        return st

    def end_stream(self, st: StreamState) -> None:
        """Drop the stream's lines still queued (not sent); those in flight stay counted
        until the controller answers them."""
        if self.stream is st:
            self.stream = None
        if st.done.done() and not st.done.cancelled():
            st.done.exception()  # mark retrieved: the caller got it or was cancelled
        if self._pending:
            self._pending = deque(i for i in self._pending if i.stream is not st)

    async def produce(self, st: StreamState, lines: Lines) -> None:
        """Read lines a bounded number ahead of the controller into the stream's buffer."""
        skipped = 0
        try:
            if isinstance(lines, AsyncIterable):
                async for lineno, text in lines:
                    if not st.active:
                        return
                    skipped = self._offer(st, lineno, text, skipped)
                    if len(st.buf) >= READ_AHEAD_LINES:
                        await _read_ahead_room(st)
            else:
                for lineno, text in lines:
                    if not st.active:
                        return
                    skipped = self._offer(st, lineno, text, skipped)
                    if len(st.buf) >= READ_AHEAD_LINES:
                        await _read_ahead_room(st)
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
        if len(item.data) > self.counter.capacity:
            raise LineRefused(
                f"line does not fit the controller's {self.counter.capacity}-byte buffer",
                line=text, lineno=lineno)
        st.buf.append(item)
        self.pump()
        return 0

    def cancel_stream(self) -> None:
        st = self.stream
        if st is not None:
            st.fail(StreamCancelled())


async def _read_ahead_room(st: StreamState) -> None:
    while len(st.buf) >= READ_AHEAD_LINES and st.active:
        st.need_more.clear()
        await st.need_more.wait()


def _answer_stream_line(item: QueuedLine, error: ErrorReply | None) -> None:
    st = item.stream
    assert st is not None
    if not st.active:
        return
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
