"""The serial link to a GRBL 1.1 controller: the handshake, status polling, and one API.

:class:`GrblLink` composes three parts and is what the rest of laserd talks to:

- :class:`~laserd.grbl.connection.SerialConnection`: the port, its supervision and reconnect,
  and the direct writes (the real-time byte the safety reflex uses);
- :class:`~laserd.grbl.sender.Sender`: character counting, the pump, acknowledgements and
  streams;
- :class:`~laserd.grbl.controller.ControllerState`: status, settings, identity, alarm.

It reports what changed as typed events on the bus (:mod:`laserd.events`):
:class:`~laserd.grbl.controller.ControllerChanged`, :class:`~laserd.grbl.controller.SettingsChanged`
and :class:`~laserd.grbl.controller.WireLine`. It knows nothing of the API's shapes: the
``machine`` snapshot is composed by :class:`laserd.machine_control.Machine`.

Lifecycle: ``await link.start()`` starts the connection's supervisor (it connects when
``autoconnect``); each connection shakes hands (banner, else soft reset and banner; ``$$``,
``$I``, a status report) and polls status (about 5 Hz idle, 10 Hz streaming or moving). The
link never sends ``$X`` or ``~`` on its own.

Streaming a job (the job runner's primitive): ``await link.stream(lines, on_progress=cb)``,
``lines`` any (async) iterable of ``(lineno, text)`` such as :func:`iter_file_lines`. Lines
are normalised (:func:`~laserd.grbl.protocol.normalise_line`) as they are read, a bounded
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

One stream at a time (a second raises :class:`~laserd.errors.MachineBusy`). Keeping the count
in step with the controller (resets, alarms): see :mod:`laserd.grbl.sender`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, Callable, Iterable

from laserd.events import EventHub
from laserd.grbl.connection import SerialConnection
from laserd.grbl.controller import (
    Alarm,
    ControllerChanged,
    ControllerState,
    SettingsChanged,
)  # fmt: skip
from laserd.grbl.errors import GrblAlarm, GrblError, LinkDown, LinkTimeout, StreamCancelled
from laserd.grbl.protocol import (
    MOVING_STATES,
    RT,
    AlarmMsg,
    Banner,
    BuildOptions,
    ErrorReply,
    MachineState,
    Overrides,
    SettingLine,
    StatusReport,
    VersionInfo,
    normalise_line,
    parse_line,
)
from laserd.grbl.sender import Sender
from laserd.grbl.status import MachineStatus
from laserd.grbl.stream import QueuedLine, StreamProgress, iter_file_lines
from laserd.grbl.wiretap import WireTap

log = logging.getLogger(__name__)

__all__ = ["GrblLink", "StreamProgress", "iter_file_lines"]


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
        self._hub = hub
        self._idle_period_s = 1.0 / status_hz_idle
        self._running_period_s = 1.0 / status_hz_running
        self._banner_timeout_s = banner_timeout_s
        self._reset_timeout_s = reset_timeout_s
        self._learn_rx = learn_rx_buffer
        self._rx_learned = False

        self._conn = SerialConnection(
            port, baudrate, reconnect_s=reconnect_s, autoconnect=autoconnect
        )
        self._conn.on_line = self._on_line
        self._conn.on_reset_written = self._on_reset_written
        self._conn.session = self._open
        self._conn.on_down = self._drop
        self._sender = Sender(self._conn, rx_buffer_bytes)
        self._tap = WireTap(hub)
        self._sender.on_sent = self._tap.sent
        self._ctl = ControllerState()
        self._banner_waiter: asyncio.Future[Banner] | None = None
        self._poller: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> str:
        return self._conn.port

    @property
    def connected(self) -> bool:
        return self._conn.is_open and self._ctl.linked

    @property
    def state(self) -> str:
        return str(self._ctl.state)

    @property
    def status(self) -> MachineStatus | None:
        """The last status report, completed with remembered WCO/overrides; None before one."""
        return self._ctl.tracker.last

    @property
    def firmware(self) -> str | None:
        return self._ctl.firmware

    @property
    def settings(self) -> dict[str, str]:
        """``$$`` settings (``{"$30": "1000", ...}``), kept current by ``$N=v`` commands."""
        return dict(self._ctl.settings)

    @property
    def alarm(self) -> Alarm | None:
        """The alarm the controller is in (None once it left the alarm state)."""
        return self._ctl.alarm

    @property
    def rx_buffer_bytes(self) -> int:
        return self._sender.capacity

    @property
    def build_options(self) -> BuildOptions | None:
        return self._ctl.build_options

    @property
    def streaming(self) -> bool:
        return self._sender.streaming

    @property
    def bytes_in_flight(self) -> int:
        return self._sender.counter.used

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the connect/reconnect supervisor (it connects now when ``autoconnect``)."""
        self._conn.start()

    async def close(self) -> None:
        """Stop reconnecting, fail whatever is in flight and close the port."""
        await self._conn.close()
        self._drop(LinkDown("The link was closed."))
        await asyncio.sleep(0)  # let the transport close the port before the loop may end

    async def connect(self, timeout_s: float = 15.0) -> None:
        """Open the port now (and keep it open across unplugs); LinkDown if that fails."""
        self._conn.want_connected = True
        await self.start()
        if self.connected:
            return
        await self._conn.connect(timeout_s)

    async def disconnect(self) -> None:
        """Close the port and stay disconnected until :meth:`connect`."""
        self._conn.disconnect()
        self._drop(LinkDown("The link was disconnected on request."))

    # ------------------------------------------------------------------ real-time bytes

    def realtime(self, byte: int | bytes) -> bool:
        """One real-time byte now, bypassing the queue and asyncio: a single write on the
        port's descriptor, from any thread (a gpiozero callback) even while the loop stalls.
        False (and nothing done) when not connected or the write failed."""
        return self._conn.realtime(byte)

    def pause(self) -> bool:
        """Feed hold (decelerates to a stop; resumable). Lines keep filling the buffer."""
        return self._conn.realtime(RT.HOLD)

    def resume(self) -> bool:
        """Cycle start after a hold. Only call this on a person's request."""
        return self._conn.realtime(RT.RESUME)

    def send_override_reset(self) -> bool:
        """Feed, spindle/laser power and rapid overrides back to 100 % (0x90, 0x99, 0x95)."""
        sent = [self._conn.realtime(b) for b in (RT.FEED_100, RT.POWER_100, RT.RAPID_100)]
        return all(sent)

    async def reset_overrides(self, timeout_s: float, poll_s: float = 0.05) -> Overrides | None:
        """Reset the overrides to 100 % and wait for a status report that says so.

        Only a report carrying ``Ov:`` after the reset bytes counts (GRBL sends it at once on a
        change, else every 10-20 reports), so ``?`` is polled every ``poll_s``. Returns
        ``Overrides()`` when confirmed, the last ``Ov:`` seen otherwise, None when no report
        carried one in ``timeout_s``. Raises LinkDown when the link is or goes down."""
        loop = self._require_open()
        ctl = self._ctl
        seen = ctl.ov_reports
        if not self.send_override_reset():
            raise LinkDown()
        target = Overrides()
        deadline = loop.time() + timeout_s
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await self.wait_for_status(
                    lambda s: ctl.ov_reports > seen and s.overrides == target,
                    min(poll_s, remaining),
                )
                return target
            except TimeoutError:
                continue
        return ctl.overrides if ctl.ov_reports > seen else None

    # ------------------------------------------------------------------ commands

    def _require_open(self) -> asyncio.AbstractEventLoop:
        loop = self._conn.loop
        if self._conn.fd is None or loop is None:
            raise LinkDown()
        return loop

    async def command(self, line: str, timeout_s: float = 10.0) -> list[str]:
        """Send one line through the counted queue; return the reply lines before its ``ok``.

        Raises LineRefused (unsafe line), GrblError (``error:N``), GrblAlarm, LinkDown,
        ControllerReset or LinkTimeout (the line stays accounted until its answer arrives).
        """
        text = normalise_line(line)
        loop = self._require_open()
        fut: asyncio.Future[list[str]] = loop.create_future()
        self._sender.enqueue(QueuedLine(text, future=fut))
        try:
            replies = await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            fut.cancel()
            raise LinkTimeout(f"No answer to {text!r} within {timeout_s:g} s.") from None
        self._ctl.on_written(text)
        changed = self._ctl.take_changed()  # from this $N=v, or the $$ listing it answered
        if changed:
            self._emit(SettingsChanged(dict(self._ctl.settings), changed))
        return replies

    async def wait_for_status(
        self, predicate: Callable[[MachineStatus], bool], timeout_s: float
    ) -> MachineStatus:
        """Wait for a status report that satisfies ``predicate``; polls ``?`` meanwhile.

        Raises TimeoutError when none comes in time, LinkDown when the link is or goes down.
        """
        loop = self._require_open()
        fut: asyncio.Future[MachineStatus] = loop.create_future()
        entry = self._ctl.add_waiter(predicate, fut)
        self._conn.realtime(RT.STATUS)
        try:
            return await asyncio.wait_for(fut, timeout_s)
        finally:
            self._ctl.remove_waiter(entry)

    async def reset(self, timeout_s: float | None = None) -> None:
        """Soft reset (0x18) and wait for the banner. Everything queued is discarded."""
        self._require_open()
        waiter = self._new_banner_waiter()
        if not self._conn.realtime(RT.RESET):
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
        self._require_open()
        sender = self._sender
        st = sender.begin_stream(on_progress, progress_interval_s)
        producer = asyncio.create_task(sender.produce(st, lines), name="grbl-stream-producer")
        self._conn.realtime(RT.STATUS)  # poll at the running rate from now on
        try:
            return await asyncio.shield(st.done)
        except asyncio.CancelledError:
            st.fail(StreamCancelled())
            raise
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
            sender.end_stream(st)

    async def cancel(self, hold_timeout_s: float = 10.0) -> None:
        """Stop the running stream and motion cleanly: feed hold, wait for ``Hold:0``, soft
        reset, wait for the banner. The queue is empty and the state consistent afterwards.

        If the hold does not complete in time the reset is sent anyway (stopping is what
        matters; GRBL may then report ALARM:3 because motion was interrupted).
        """
        self._sender.cancel_stream()
        if self._conn.fd is None:
            return
        self._conn.realtime(RT.HOLD)
        counter = self._sender.counter
        try:
            await self.wait_for_status(
                lambda s: (s.state == MachineState.HOLD and s.substate == 0)
                or s.state in (MachineState.ALARM, MachineState.DOOR)
                or (s.state == MachineState.IDLE and counter.used == 0),
                hold_timeout_s,
            )
        except TimeoutError:
            log.warning("feed hold did not complete within %.1f s; resetting anyway",
                        hold_timeout_s)
        await self.reset()

    # ------------------------------------------------------------------ receive

    def _on_line(self, line: str) -> None:
        tap = self._tap
        if line == "ok":
            tap.received(line, self._sender)
            self._sender.ack(None)
            return
        msg = parse_line(line)
        if isinstance(msg, StatusReport):
            self._on_status(msg)
            tap.status(line)
            return
        tap.received(line, self._sender)
        if isinstance(msg, ErrorReply):
            self._sender.ack(msg)
        elif isinstance(msg, AlarmMsg):
            self._on_alarm(msg)
        elif isinstance(msg, Banner):
            self._on_banner(msg)
        else:
            self._sender.reply(line)
            self._on_info(msg)

    def _on_info(self, msg: object) -> None:
        if isinstance(msg, SettingLine):
            self._ctl.on_setting(msg)
        elif isinstance(msg, BuildOptions):
            self._ctl.build_options = msg
            if self._learn_rx and msg.rx_buffer_bytes:
                self._learn_capacity(msg.rx_buffer_bytes, "[OPT:]")
        elif isinstance(msg, VersionInfo):
            self._ctl.on_version(msg)

    def _on_status(self, report: StatusReport) -> None:
        status = self._ctl.on_status(report)
        if (
            self._learn_rx
            and not self._rx_learned
            and report.rx_free
            and status.state == MachineState.IDLE
            and self._sender.counter.used == 0
        ):
            self._learn_capacity(report.rx_free, "Bf:")
        self._changed("status")

    def _on_alarm(self, msg: AlarmMsg) -> None:
        log.warning("controller alarm %d: %s", msg.code, msg.meaning)
        self._ctl.on_alarm(msg)
        # Whatever waited on the stream or a command fails now; lines in flight stay
        # counted until answered or given up (see Sender.alarm).
        self._sender.alarm(GrblAlarm(msg.code, msg.meaning))
        self._conn.realtime(RT.STATUS)
        self._changed("alarm")

    def _on_banner(self, msg: Banner) -> None:
        log.info("controller banner: %s", msg.raw)
        self._ctl.on_banner(msg)
        # Whether we reset it or it reset itself (safety supervisor, button, power blip),
        # its buffers are empty now.
        self._sender.banner()
        waiter = self._banner_waiter
        self._banner_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(msg)
        self._conn.realtime(RT.STATUS)

    def _on_reset_written(self, seq: int) -> None:
        self._sender.reset_written(seq)

    def _learn_capacity(self, size: int, source: str) -> None:
        self._rx_learned = True
        self._sender.set_capacity(size, source)

    # ------------------------------------------------------------------ reports

    def _emit(self, event: object) -> None:
        if self._hub is not None:
            self._hub.emit(event)

    def _changed(self, cause: str) -> None:
        self._emit(ControllerChanged(cause))

    # ------------------------------------------------------------------ connection

    def _new_banner_waiter(self) -> asyncio.Future[Banner]:
        assert self._conn.loop is not None
        if self._banner_waiter is not None and not self._banner_waiter.done():
            return self._banner_waiter
        self._banner_waiter = self._conn.loop.create_future()
        return self._banner_waiter

    async def _open(self) -> None:
        """Open the port and shake hands: banner (else soft reset), ``$$``, ``$I``, status."""
        conn = self._conn
        self._ctl.connecting()
        self._changed("connecting")
        await conn.open()
        self._sender.new_session()
        self._rx_learned = False
        # The controller's state is unknown after opening: boards that reset on open print
        # their banner; others need a soft reset to get to a known state.
        waiter = self._new_banner_waiter()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self._banner_timeout_s)
        except TimeoutError:
            log.info("no banner from %s; sending soft reset", conn.port)
            if not conn.realtime(RT.RESET):
                raise LinkDown("The port closed during the handshake.") from None
            try:
                await asyncio.wait_for(waiter, self._reset_timeout_s)
            except TimeoutError:
                raise LinkTimeout(f"No GRBL banner from {conn.port}.") from None
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
            raise LinkTimeout(f"No status report from {conn.port} after connecting.") from None
        self._ctl.connected(status.state)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="grbl-status-poll")
        log.info("connected to %s (%s), state %s, rx buffer %d bytes",
                 conn.port, self._ctl.firmware, self._ctl.state, self._sender.capacity)
        self._changed("connected")

    def _drop(self, exc: Exception) -> None:
        """Close the port (if open) and fail everything that was waiting on it."""
        self._conn.abort()
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        waiter, self._banner_waiter = self._banner_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc if isinstance(exc, LinkDown) else LinkDown(str(exc)))
            waiter.exception()  # retrieved: nobody may be waiting any more
        self._sender.fail_all(exc)
        if self._ctl.disconnected():
            self._changed("disconnected")

    async def _poll(self) -> None:
        while self._conn.fd is not None:
            running = self.streaming or self._ctl.state in MOVING_STATES
            self._conn.realtime(RT.STATUS)
            await asyncio.sleep(self._running_period_s if running else self._idle_period_s)
