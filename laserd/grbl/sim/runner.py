"""The simulated controller on a pseudo-terminal, in its own thread, paced like a UART.

The daemon opens ``<link_dir>/ttyGRBL`` with its real serial code (pyserial-asyncio), so
everything from termios to partial reads is exercised. The simulator runs in a thread of its
own so a stalled daemon event loop cannot stall the "hardware".

Pacing: a UART at ``baudrate`` with 8N1 framing moves ``baudrate / 10`` bytes per second, one
byte after the other. Bytes the daemon writes are read from the pty master (at most 4 KiB
held, like a host serial driver's buffer, so the daemon's writes block when it is full) and
reach the controller one byte-time apart, after ``latency_s`` (the USB-serial adapter's
frame latency); replies travel back the same way. A line therefore costs its bytes' time on
the wire and an ``ok`` costs a round trip, as on real hardware, so throughput benchmarks
measure the link and the sender, not the pty.

Unplug closes the master: the daemon's next read fails like a vanished USB device, and the
stable symlink disappears until :meth:`SimulatedGrbl.replug` points it at a new pty.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import tempfile
import threading
import time
import tty
from collections import deque
from pathlib import Path

from .core import GrblCore
from .record import SimRecord

log = logging.getLogger(__name__)

LINK_NAME = "ttyGRBL"
INBOX_LIMIT_BYTES = 4096  # like a host serial driver's transmit buffer
IDLE_WAKE_S = 0.1
DELIVERY_GRANULE_S = 0.001  # hand bytes over in ~1 ms batches: ~11 bytes at 115200 baud
DEFAULT_LATENCY_S = 0.001  # one USB full-speed frame each way, as a CH340/16U2 adapter adds
DEFAULT_BOOT_DELAY_S = 0.1  # reset_on_open: bootloader time before GRBL's banner
PRESENCE_POLL_S = 0.01  # how often an unopened port is checked for a newcomer


class SimulatedGrbl:
    """A GRBL 1.1h stand-in on a pty. Every public method is thread-safe.

    ``settings`` presets ``$`` values (e.g. ``{22: 1}`` for a machine with homing switches);
    ``starve_window_s`` is how soon after the planner ran dry a new motion line must arrive to
    count as a starvation (a longer pause is taken as the end of a job, not a slow sender);
    ``latency_s`` is added once in each direction (0 for an ideal wire).

    Nobody holds the pty's slave end but the daemon, so the simulator knows when the port is
    open: while it is closed, what the board says is lost (as on a wire nobody listens to).
    ``reset_on_open`` models Arduino-based boards, whose DTR line resets the controller each
    time the port opens: silence for ``boot_delay_s``, then a fresh banner. Without it the board
    carries on untouched, as boards with a native USB or no DTR reset do. (A close and
    reopen faster than the thread wakes — microseconds — is seen as one long open.)
    """

    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        baudrate: int = 115200,
        bed_mm: tuple[float, float] = (400.0, 400.0),
        rx_buffer_bytes: int = 128,
        planner_blocks: int = 15,
        link_dir: str | Path | None = None,
        settings: dict[int, float] | None = None,
        starve_window_s: float = 0.5,
        latency_s: float = DEFAULT_LATENCY_S,
        reset_on_open: bool = False,
        boot_delay_s: float = DEFAULT_BOOT_DELAY_S,
    ) -> None:
        if time_scale <= 0 or baudrate <= 0 or latency_s < 0:
            raise ValueError("time_scale and baudrate must be positive")
        self.record = SimRecord()
        self.baudrate = baudrate
        self.time_scale = time_scale
        self._bytes_per_s = baudrate / 10.0
        self._granule = max(1, int(self._bytes_per_s * DELIVERY_GRANULE_S))
        self._core = GrblCore(
            record=self.record, bed_mm=bed_mm, rx_buffer_bytes=rx_buffer_bytes,
            planner_blocks=planner_blocks, time_scale=time_scale, settings=settings,
            starve_window_s=starve_window_s,
        )  # fmt: skip
        self._owns_link_dir = link_dir is None
        if link_dir is None:
            link_dir = tempfile.mkdtemp(prefix="laserd-sim-")
        self._link_dir = Path(link_dir)
        self._lock = threading.RLock()
        self._master: int | None = None
        self._slave_name = ""
        self.latency_s = latency_s
        self.reset_on_open = reset_on_open
        self.boot_delay_s = boot_delay_s
        self._reset_wire()
        self._poller: select.poll | None = None
        self._client_present = False
        self._boot_at: float | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread: threading.Thread | None = None
        self._running = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def link_path(self) -> str:
        """The stable port name the daemon opens (``<link_dir>/ttyGRBL``)."""
        return str(self._link_dir / LINK_NAME)

    def start(self) -> str:
        """Open the pty, start the controller thread, and return the port path to open."""
        with self._lock:
            if self._running:
                return self.link_path
            self._link_dir.mkdir(parents=True, exist_ok=True)
            self._open_pty()
            self._core.out.clear()
            self._core.power_up()
            self._running = True
        self._thread = threading.Thread(target=self._run, name="grbl-sim", daemon=True)
        self._thread.start()
        log.info("simulated GRBL on %s (%s), %d baud, time x%g",
                 self.link_path, self._slave_name, self.baudrate, self.time_scale)  # fmt: skip
        return self.link_path

    def stop(self) -> None:
        """Stop the thread, close the pty, remove the symlink. Safe to call twice."""
        with self._lock:
            self._running = False
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self._owns_link_dir:
            with contextlib.suppress(OSError):
                self._link_dir.rmdir()

    def __enter__(self) -> SimulatedGrbl:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # the line discipline keeps these termios for the next opener
        os.set_blocking(master, False)
        self._slave_name = os.ttyname(slave)
        os.close(slave)  # only the daemon holds the slave: its open and close are visible
        self._master = master
        self._poller = select.poll()
        self._poller.register(master, select.POLLIN)
        self._client_present = False
        self._boot_at = None
        tmp = self._link_dir / f".{LINK_NAME}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(self._slave_name, tmp)
        os.replace(tmp, self._link_dir / LINK_NAME)

    def _close_pty(self) -> None:
        link = self._link_dir / LINK_NAME
        with contextlib.suppress(OSError):
            if os.readlink(link) == self._slave_name:
                link.unlink()
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
        self._master = None
        self._poller = None
        self._client_present = False
        self._boot_at = None
        self._reset_wire()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    # ------------------------------------------------------------------ fault injection

    def unplug(self) -> None:
        """Pull the USB cable: the port vanishes and the board loses power."""
        with self._lock:
            self._close_pty()
            self._core.power_down()
        self._wake()

    def replug(self) -> str:
        """Plug it back: a new pty behind the same symlink, and a freshly booted board."""
        with self._lock:
            if self._master is None:
                self._open_pty()
            self._core.out.clear()
            self._reset_wire()
            self._core.power_up()
        self._wake()
        return self.link_path

    def raise_alarm(self, code: int) -> None:
        """An alarm as if a switch tripped: ALARM:1/2 lock until reset, others until ``$X``."""
        with self._lock:
            self._core.tick(time.monotonic())
            self._core.raise_alarm(code)
        self._wake()

    def error_on_line(self, n: int, code: int) -> None:
        """Answer ``error:code`` (without executing it) to the n-th line received from now."""
        if n < 1:
            raise ValueError("n counts from 1 (the next line)")
        with self._lock:
            self._core.error_on_line(n, code)

    def slow_acks(self, delay_s: float) -> None:
        """Hold every ``ok`` back by ``delay_s`` real seconds (0 turns it off)."""
        with self._lock:
            self._core.slow_ack_s = max(0.0, delay_s)
        self._wake()

    def ignore_realtime(self, *codes: int) -> None:
        """Drop these real-time bytes from now on (none: stop dropping). A fault: a board
        whose firmware or line loses, say, the override resets (0x90, 0x95, 0x99)."""
        with self._lock:
            self._core.ignored_realtime = frozenset(codes)

    def reset_controller(self) -> None:
        """The board rebooted by itself (brown-out, watchdog): unsolicited banner, state lost."""
        with self._lock:
            self._core.power_up()
        self._wake()

    def set_door(self, open_: bool) -> None:
        """The door switch input (``Pn:D``); opening it also triggers the safety door."""
        with self._lock:
            self._core.tick(time.monotonic())
            self._core.door_switch(open_)
        self._wake()

    def record_snapshot(self) -> SimRecord:
        """A consistent copy of the record (iterating the live one races the thread)."""
        with self._lock:
            copy = SimRecord()
            for name in copy.__dataclass_fields__:
                value = getattr(self.record, name)
                if isinstance(value, deque):
                    value = deque(value, maxlen=value.maxlen)
                elif isinstance(value, list):
                    value = list(value)
                setattr(copy, name, value)
            return copy

    def clear_record(self) -> None:
        """Start a fresh record (between phases of a benchmark)."""
        with self._lock:
            fresh = SimRecord()
            for name in fresh.__dataclass_fields__:
                setattr(self.record, name, getattr(fresh, name))

    # ------------------------------------------------------------------ live view

    @property
    def state(self) -> str:
        with self._lock:
            return self._core.state_text()

    @property
    def position_mm(self) -> tuple[float, float, float]:
        with self._lock:
            return self._core.motion.position()

    @property
    def laser_on(self) -> bool:
        with self._lock:
            return self._core.laser_on

    @property
    def laser_power(self) -> float:
        """Current beam power in S units (``$30`` = full power), overrides applied."""
        with self._lock:
            return self._core.laser_power

    @property
    def overrides(self) -> tuple[int, int, int]:
        with self._lock:
            c = self._core
            return c.feed_ovr, c.rapid_ovr, c.spindle_ovr

    @property
    def settings(self) -> dict[int, float]:
        with self._lock:
            return dict(self._core.settings)

    @property
    def planner_blocks_queued(self) -> int:
        with self._lock:
            return len(self._core.motion.blocks)

    @property
    def tx_pending_bytes(self) -> int:
        """Bytes the board has said that have not yet left the wire (0: all delivered or lost)."""
        with self._lock:
            return len(self._core.out) + sum(len(buf) for _, buf in self._tx_wire)

    @property
    def rx_buffered(self) -> int:
        with self._lock:
            return len(self._core.rx)

    # ------------------------------------------------------------------ the thread

    def _reset_wire(self) -> None:
        self._rx_wire: deque[list] = deque()  # [time the next byte completes, bytes]
        self._rx_wire_bytes = 0
        self._rx_wire_free = 0.0
        self._tx_wire: deque[list] = deque()  # [time the next byte reaches the host, bytes]
        self._tx_wire_free = 0.0
        self._tx_blocked = False

    def _on_host_write(self, data: bytes, now: float) -> None:
        """Bytes the daemon wrote: after the adapter's latency, one byte every 1/rate s."""
        begin = max(now + self.latency_s, self._rx_wire_free)
        self._rx_wire.append([begin + 1.0 / self._bytes_per_s, bytearray(data)])
        self._rx_wire_free = begin + len(data) / self._bytes_per_s
        self._rx_wire_bytes += len(data)

    def _deliver_rx(self, now: float) -> None:
        """Hand the controller every byte that has finished arriving by ``now``."""
        rate = self._bytes_per_s
        while self._rx_wire:
            entry = self._rx_wire[0]
            due_s, buf = entry
            if now < due_s:
                return
            n = min(len(buf), 1 + int((now - due_s) * rate))
            chunk = bytes(buf[:n])
            del buf[:n]
            entry[0] = due_s + n / rate
            self._rx_wire_bytes -= n
            if not buf:
                self._rx_wire.popleft()
            self._core.receive(chunk, now)

    def _collect_tx(self, now: float) -> None:
        """Take what the controller emitted and schedule it on the wire towards the host."""
        out = self._core.out
        if not out:
            return
        begin = max(now, self._tx_wire_free)
        self._tx_wire.append([begin + 1.0 / self._bytes_per_s + self.latency_s, bytearray(out)])
        self._tx_wire_free = begin + len(out) / self._bytes_per_s
        out.clear()

    def _flush_tx(self, now: float, master: int | None) -> None:
        """Write to the pty every byte that has reached the host by ``now``."""
        rate = self._bytes_per_s
        self._tx_blocked = False
        while self._tx_wire:
            entry = self._tx_wire[0]
            due_s, buf = entry
            if now < due_s:
                return
            n = min(len(buf), 1 + int((now - due_s) * rate))
            if master is None or not self._client_present:
                written = n  # nobody listening: the bytes fall off the wire
            else:
                try:
                    written = os.write(master, buf[:n])
                except BlockingIOError:
                    self._tx_blocked = True  # the reader is behind: wait until it drains
                    return
                except OSError as exc:
                    log.debug("pty write failed: %s", exc)
                    written = n
                self.record.bytes_out += written
            del buf[:written]
            entry[0] = due_s + written / rate
            if not buf:
                self._tx_wire.popleft()

    def _next_due_s(self, now: float) -> float:
        """Seconds until the next batch of wire bytes is due (a ~1 ms batch, for CPU's sake)."""
        wait = IDLE_WAKE_S
        rate = self._bytes_per_s
        if self._rx_wire:
            due_s, buf = self._rx_wire[0]
            wait = min(wait, due_s + (min(len(buf), self._granule) - 1) / rate - now)
        if self._tx_wire and not self._tx_blocked:
            due_s, buf = self._tx_wire[0]
            wait = min(wait, due_s + (min(len(buf), self._granule) - 1) / rate - now)
        return max(0.0, wait)

    def _watch_client(self, now: float) -> None:
        """Notice the daemon opening or closing the port; reboot the board if it has DTR reset."""
        if self._poller is None:
            return
        hung_up = any(ev & select.POLLHUP for _, ev in self._poller.poll(0))
        if hung_up:
            self._client_present = False
        elif not self._client_present:
            self._client_present = True
            if self.reset_on_open:
                self._core.power_down()  # held in the bootloader: deaf and mute
                self._reset_wire()
                self._boot_at = now + self.boot_delay_s
        if self._boot_at is not None and now >= self._boot_at:
            self._boot_at = None
            self._core.power_up()

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            with self._lock:
                if not self._running:
                    return
                core = self._core
                master = self._master
                self._watch_client(now)
                try:
                    core.tick(now)
                    self._deliver_rx(now)
                except Exception as exc:  # a simulator bug must not kill the "hardware"
                    log.exception("simulated controller failed; rebooting it")
                    self.record.fault(f"simulator error: {exc!r}")
                    core.power_up()
                self._collect_tx(now)
                self._flush_tx(now, master)
                timeout = min(core.next_wake_s(), self._next_due_s(now))
                rlist = [self._wake_r]
                if master is not None and not self._client_present:
                    timeout = min(timeout, PRESENCE_POLL_S)
                elif master is not None and self._rx_wire_bytes < INBOX_LIMIT_BYTES:
                    rlist.append(master)
                if self._boot_at is not None:
                    timeout = max(0.0, min(timeout, self._boot_at - now))
                wlist = [master] if self._tx_blocked and master is not None else []
            try:
                readable, _, _ = select.select(rlist, wlist, [], timeout)
            except (OSError, ValueError):
                readable = []  # the master was closed by unplug() meanwhile
            if self._wake_r in readable:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
            if master is not None and master in readable:
                self._read_master(master)

    def _read_master(self, master: int) -> None:
        with self._lock:
            if master != self._master:
                return
            try:
                data = os.read(master, INBOX_LIMIT_BYTES - self._rx_wire_bytes)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EIO:
                    self._client_present = False  # the daemon closed the port
                else:
                    log.debug("pty read failed: %s", exc)
                return
            if data:
                self._on_host_write(data, time.monotonic())
