"""The pieces of a stream: queued lines, the state of a running stream, and its source.

:class:`~laserd.grbl.link.GrblLink` owns the queue and the acknowledgements; this module holds
the plain data they move around and :func:`iter_file_lines`, which reads a G-code file in
chunks off the event loop so that a job never loads its file whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: How many normalised lines a stream reads ahead of the controller.
READ_AHEAD_LINES = 64


@dataclass(slots=True)
class StreamProgress:
    """Where a stream stands. Line counts include blank/comment-only lines, which are not
    sent but count as done once every line before them is acknowledged."""

    lines_sent: int = 0
    lines_acked: int = 0
    bytes_sent: int = 0
    last_lineno: int | None = None
    elapsed_s: float = 0.0


class QueuedLine:
    """One line in the link's queue or in flight (a command or a stream line)."""

    __slots__ = ("consumed", "data", "future", "lineno", "replies", "stream", "text")

    def __init__(
        self,
        text: str,
        *,
        future: asyncio.Future[list[str]] | None = None,
        stream: StreamState | None = None,
        lineno: int | None = None,
        consumed: int = 1,
    ) -> None:
        self.text = text
        self.data = (text + "\n").encode("ascii")
        self.future = future
        self.stream = stream
        self.lineno = lineno
        self.consumed = consumed
        self.replies: list[str] | None = [] if future is not None else None


class StreamState:
    """State of the one running stream, shared by its producer and the link's ack path."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_progress: Callable[[StreamProgress], None] | None,
        progress_interval_s: float,
    ) -> None:
        self.buf: deque[QueuedLine] = deque()
        self.need_more = asyncio.Event()
        self.need_more.set()
        self.done: asyncio.Future[StreamProgress] = loop.create_future()
        self.progress = StreamProgress()
        self.exhausted = False
        self.trailing = 0
        self.outstanding = 0
        self.started = time.monotonic()
        self.on_progress = on_progress
        self.progress_interval_s = progress_interval_s
        self.next_progress = 0.0

    @property
    def active(self) -> bool:
        return not self.done.done()

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
            self.buf.clear()
            self.need_more.set()  # wake the producer so it notices and stops

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        self.progress.elapsed_s = now - self.started
        if self.on_progress is not None and (force or now >= self.next_progress):
            self.next_progress = now + self.progress_interval_s
            try:
                self.on_progress(self.progress)
            except Exception:
                log.exception("stream progress callback failed")

    def maybe_finish(self) -> None:
        if self.exhausted and self.outstanding == 0 and not self.buf and not self.done.done():
            self.progress.lines_acked += self.trailing
            self.trailing = 0
            self.report(force=True)
            self.done.set_result(self.progress)


async def iter_file_lines(
    path: str | Path, *, chunk_bytes: int = 64 * 1024, first_lineno: int = 1
) -> AsyncIterator[tuple[int, str]]:
    """Yield ``(lineno, text)`` from a G-code file read in chunks off the event loop.

    The file is never loaded whole; each chunk is read and decoded in the default executor.
    Undecodable bytes become U+FFFD, which :func:`normalise_line` refuses outside comments.
    """
    loop = asyncio.get_running_loop()
    fh = await loop.run_in_executor(None, Path(path).open, "rb")
    try:
        lineno = first_lineno
        partial = b""
        while True:
            chunk = await loop.run_in_executor(None, fh.read, chunk_bytes)
            if not chunk:
                break
            *lines, partial = (partial + chunk).split(b"\n")
            for raw in lines:
                yield lineno, raw.decode("utf-8", "replace")
                lineno += 1
        if partial:
            yield lineno, partial.decode("utf-8", "replace")
    finally:
        await loop.run_in_executor(None, fh.close)
