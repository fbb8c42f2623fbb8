"""The daemon's side of systemd: sd_notify, the loop-proving watchdog, status text, journald.

Why no libsystemd for the notify protocol: it is one datagram of ``KEY=VALUE`` lines to the
socket named in ``$NOTIFY_SOCKET``; doing it here keeps the appliance free of a C dependency
for the part that decides whether it is restarted, and keeps every call a quiet no-op when
the daemon runs from a shell or a test without systemd.

The watchdog ping comes from a task *on the event loop* and only when that task woke up on
time: a thread would keep pinging while the loop is hung, and a hung loop means interlock
edges, heartbeat output and the serial link are no longer served (DESIGN principle 3: a hung
loop is an unsafe state, so systemd must restart the daemon).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: journald stream priority prefixes (sd-daemon.h), used when stderr is the journal.
_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}

#: Where journald listens for native-protocol datagrams (fixed by sd-journal).
JOURNAL_SOCKET = "/run/systemd/journal/socket"

#: Record attributes that become structured journal fields, and the field names they get.
STRUCTURED_FIELDS: Mapping[str, str] = {
    "request_id": "REQUEST_ID",
    "job_id": "JOB_ID",
    "user": "USER",
}


# ---------------------------------------------------------------------------- sd_notify


def _socket_address(raw: str) -> str | bytes:
    """``@name`` is an abstract socket (leading NUL); anything else is a filesystem path."""
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


class Notifier:
    """Sends sd_notify datagrams to one socket; a no-op when there is none.

    The socket is non-blocking: if systemd's queue were ever full the message is dropped and
    logged at debug, never waited for, because the caller is usually the event loop.
    """

    def __init__(self, socket_path: str | None) -> None:
        self.socket_path = socket_path or None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.socket_path is not None

    def notify(self, **fields: Any) -> bool:
        """Send ``KEY=VALUE`` lines; True when the datagram went out."""
        if self.socket_path is None or not fields:
            return False
        lines = []
        for key, value in fields.items():
            text = str(value).replace("\n", " ")
            lines.append(f"{key}={text}")
        payload = "\n".join(lines).encode()
        with self._lock:
            try:
                if self._sock is None:
                    kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    self._sock = socket.socket(socket.AF_UNIX, kind)
                    self._sock.setblocking(False)
                self._sock.sendto(payload, _socket_address(self.socket_path))
            except OSError as exc:
                log.debug("sd_notify to %s failed: %s", self.socket_path, exc)
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        fields: dict[str, Any] = {"READY": 1}
        if status:
            fields["STATUS"] = status
        return self.notify(**fields)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def stopping(self, status: str | None = None) -> bool:
        fields: dict[str, Any] = {"STOPPING": 1}
        if status:
            fields["STATUS"] = status
        return self.notify(**fields)

    def reloading(self) -> bool:
        """RELOADING=1 with MONOTONIC_USEC, as systemd >= 253 expects; older ones ignore it."""
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(RELOADING=1, MONOTONIC_USEC=now_usec)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start/stop time (EXTEND_TIMEOUT_USEC), e.g. around a long migration."""
        return self.notify(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


_default: Notifier | None = None
_default_lock = threading.Lock()


def default_notifier() -> Notifier:
    """The process-wide notifier from ``$NOTIFY_SOCKET`` (read once, on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Notifier.from_env()
        return _default


def notify(**fields: Any) -> bool:
    return default_notifier().notify(**fields)


def ready(status: str | None = None) -> bool:
    return default_notifier().ready(status)


def status(text: str) -> bool:
    return default_notifier().status(text)


def stopping(status: str | None = None) -> bool:
    return default_notifier().stopping(status)


def watchdog() -> bool:
    return default_notifier().watchdog()


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """``WatchdogSec`` as seen by this process, or None when no watchdog is asked of it.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for; a child that
    inherited the variables must not ping on its parent's behalf.
    """
    env = os.environ if env is None else env
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


# ---------------------------------------------------------------------------- watchdog


@dataclass
class WatchdogStats:
    pings: int = 0
    withheld: int = 0
    worst_late_s: float = 0.0


class LoopWatchdog:
    """Pings ``WATCHDOG=1`` every ``period_s`` while the event loop keeps its schedule.

    Each round sleeps ``period_s`` on the loop and measures how late the wake-up was. A
    wake-up later than ``max_late_s`` means the loop was blocked (a hung handler, a
    synchronous call that should have gone to an executor); that round's ping is withheld and
    the next round is a short re-check, so a loop that stays blocked, or keeps being late,
    sends nothing and systemd restarts the daemon after ``WatchdogSec``, while a loop that
    recovered pings again at once.
    """

    def __init__(
        self,
        notifier: Notifier,
        period_s: float,
        *,
        max_late_s: float | None = None,
    ) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self.notifier = notifier
        self.period_s = period_s
        # Half a period of lateness still leaves systemd a ping well inside WatchdogSec.
        self.max_late_s = max_late_s if max_late_s is not None else max(period_s / 2, 0.05)
        self.recheck_s = min(period_s, 0.25)
        self.stats = WatchdogStats()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_env(
        cls, notifier: Notifier, env: Mapping[str, str] | None = None
    ) -> LoopWatchdog | None:
        """A watchdog pinging at half of ``$WATCHDOG_USEC``, or None when none is asked for."""
        interval_s = watchdog_interval_s(env)
        if interval_s is None or not notifier.enabled:
            return None
        return cls(notifier, interval_s / 2)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.notifier.watchdog()
        self.stats.pings += 1
        delay_s = self.period_s
        while True:
            due = loop.time() + delay_s
            await asyncio.sleep(delay_s)
            late_s = loop.time() - due
            self.stats.worst_late_s = max(self.stats.worst_late_s, late_s)
            if late_s > self.max_late_s:
                # Check again soon rather than a full period later: a loop that is served
                # again gets its ping within recheck_s; one that stays blocked gets none.
                self.stats.withheld += 1
                log.warning(
                    "event loop was %.2f s late (limit %.2f s); watchdog ping withheld",
                    late_s,
                    self.max_late_s,
                )
                delay_s = self.recheck_s
                continue
            if self.notifier.watchdog():
                self.stats.pings += 1
            delay_s = self.period_s

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="sd-watchdog")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


# ---------------------------------------------------------------------------- STATUS=


def describe_status(machine: Mapping[str, Any] | None, job: Mapping[str, Any] | None) -> str:
    """One line for ``systemctl status``: the job and its progress, else idle; the link."""
    if machine is None:
        link = "controller not seen yet"
    elif machine.get("connected"):
        link = f"controller connected ({machine.get('state') or 'unknown'})"
    else:
        link = "controller disconnected"
    active = {"queued", "waiting_start", "running", "paused"}
    if job is not None and job.get("state") in active:
        progress = job.get("progress")
        pct = f" {float(progress) * 100:.0f}%" if isinstance(progress, int | float) else ""
        return f"job {job.get('id')} {job.get('state')}{pct}; {link}"
    return f"idle; {link}"


class StatusReporter:
    """Keeps ``STATUS=`` current from hub events (``machine`` and ``job``).

    Subscribed to :class:`laserd.events.Event` on the bus; called on the loop for each, it only
    sends a datagram when the line it would show changes (machine snapshots arrive at 5-10 Hz,
    the text changes far less often).
    """

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.machine: dict[str, Any] | None = None
        self.job: dict[str, Any] | None = None
        self.last_text: str | None = None
        self.enabled = True

    def __call__(self, event: Any) -> None:
        if event.type == "machine":
            self.machine = dict(event.data)
            embedded = event.data.get("job")
            if isinstance(embedded, Mapping):
                self.job = dict(embedded)
            elif "job" in event.data and embedded is None:
                self.job = None
        elif event.type == "job":
            self.job = dict(event.data)
        else:
            return
        self.refresh()

    def text(self) -> str:
        return describe_status(self.machine, self.job)

    def refresh(self) -> None:
        if not self.enabled:
            return
        text = self.text()
        if text != self.last_text:
            self.last_text = text
            self.notifier.status(text)


# ---------------------------------------------------------------------------- journald


def structured_fields(record: logging.LogRecord) -> dict[str, str]:
    """The journal fields of one record: REQUEST_ID, JOB_ID, USER where they are known.

    The values come from ``extra=`` or from :class:`laserd.logs.ContextFilter`, which copies
    the request/job/user contextvars onto every record (``-`` and empty mean "none").
    """
    fields: dict[str, str] = {}
    for attr, name in STRUCTURED_FIELDS.items():
        value = getattr(record, attr, None)
        if value not in (None, "", "-"):
            fields[name] = str(value)
    return fields


def running_under_systemd(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("JOURNAL_STREAM") or env.get("INVOCATION_ID"))


def _journal_module() -> Any | None:
    try:
        from systemd import journal  # systemd-python: the optional [systemd] extra
    except ImportError:
        return None
    return journal


class _StreamFormatter(logging.Formatter):
    """Plain lines for a terminal; ``<N>`` priority prefixes and no clock for journald's stream."""

    def __init__(self, to_journal_stream: bool) -> None:
        if to_journal_stream:
            super().__init__("%(name)s: %(message)s%(context)s")
        else:
            super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s")
        self.to_journal_stream = to_journal_stream

    def format(self, record: logging.LogRecord) -> str:
        fields = structured_fields(record)
        record.context = (
            " [" + " ".join(f"{k.lower()}={v}" for k, v in fields.items()) + "]" if fields else ""
        )
        text = super().format(record)
        if self.to_journal_stream:
            levels = (lv for lv in _SYSLOG_PRIORITY if lv <= record.levelno)
            level = max(levels, default=logging.DEBUG)
            prefix = f"<{_SYSLOG_PRIORITY[level]}>"
            text = "\n".join(prefix + line for line in text.splitlines())
        return text


def journal_handler(
    env: Mapping[str, str] | None = None,
    *,
    stream: Any = None,
    journal_socket: str | os.PathLike[str] = JOURNAL_SOCKET,
) -> logging.Handler:
    """The daemon's log handler: journald with structured fields under systemd, else stderr.

    journald is used when systemd started us, systemd-python imports, and journald's socket
    exists (a container may pass INVOCATION_ID without running journald). Under systemd
    without systemd-python the stderr lines still reach the journal (the unit's stderr is a
    journal stream), with priority prefixes so ``journalctl -p`` works.
    """
    env = os.environ if env is None else env
    handler: logging.Handler
    journal = _journal_module() if running_under_systemd(env) else None
    if journal is not None and os.path.exists(journal_socket):
        handler = _make_journal_handler(journal)
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(_StreamFormatter(bool(env.get("JOURNAL_STREAM"))))
    return handler


def _make_journal_handler(journal: Any, sender: Any = None) -> logging.Handler:
    """A ``systemd.journal.JournalHandler`` that sends only well-formed fields.

    The stock ``emit`` forwards every record attribute as a lowercase field, which journald
    drops as invalid; this one sends the standard fields plus :data:`STRUCTURED_FIELDS`.
    """

    class LaserdJournalHandler(journal.JournalHandler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                message = self.format(record)
                fields: dict[str, Any] = dict(self._extra)
                if record.exc_text:
                    fields["EXCEPTION_TEXT"] = record.exc_text
                fields.update(structured_fields(record))
                self.send(
                    message,
                    PRIORITY=format(self.map_priority(record.levelno)),
                    LOGGER=record.name,
                    THREAD_NAME=record.threadName or "",
                    CODE_FILE=record.pathname,
                    CODE_LINE=record.lineno,
                    CODE_FUNC=record.funcName,
                    **fields,
                )
            except Exception:
                self.handleError(record)

    kwargs: dict[str, Any] = {"SYSLOG_IDENTIFIER": "laserd"}
    if sender is not None:
        kwargs["sender_function"] = sender
    handler = LaserdJournalHandler(**kwargs)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler
