"""The GRBL bridge: a TCP port that speaks GRBL's serial protocol (API.md, "Bridge").

A desktop sender (LightBurn: device "GRBL", connection TCP/IP) connects; laserd decides:

1. Only addresses in ``[bridge] allow`` get past the accept: any other is closed at once.
2. A new connection *waits* (``pending``), holding nothing — no machine claim, no laser
   enable, not one byte to the controller — until a signed-in user accepts it (or the
   start button is pressed, where one is fitted). Rejected, timed-out or surplus waiting
   connections are closed.
3. Accepting takes the machine (:mod:`laserd.machine_use`) for the session: web jobs,
   frames, jogs and the console are refused with 409 while it lasts, and accepting is
   refused while any of those holds the machine. The session is a row in job history
   (``source = "bridge"``, the accepting user, the peer) and in the audit log. Overrides are
   reset to 100 %, then the laser-enable output is raised: it stays up only while the
   session runs.
4. The session ends when the client disconnects, when a user ends it, after
   ``idle_timeout_s`` without a line (machine at rest), on an emergency-stop trip, when the
   link is lost, or at shutdown. Every end drops the laser-enable output first, then records.
   A client that *vanishes* with work in the controller (laptop asleep, Wi-Fi gone: found by
   TCP keepalive within ``client_timeout_s``, or a closed connection) gets a feed hold at
   once and then a safe stop (hold completed, soft reset) — unless ``keep_streaming`` is
   set, in which case what was received runs to its end first.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from laserd import errors
from laserd.bridge.config import BridgeSettings
from laserd.bridge.connections import (
    REJECTED,
    Connection,
    allowed,
    keepalive,
    wait_for_acceptance,
)
from laserd.bridge.record import Running, SessionRecord, session_view
from laserd.bridge.session import Session
from laserd.db import utcnow
from laserd.events import EventHub
from laserd.grbl.controller import SerialLine, StatusLine, WireLine
from laserd.grbl.protocol import MachineState
from laserd.machine_use import Claim, MachineUse
from laserd.safety.supervisor import Trip

if TYPE_CHECKING:
    import aiosqlite

    from laserd.auth.principal import Principal
    from laserd.grbl.link import GrblLink
    from laserd.safety import SafetySupervisor
    from laserd.store.audit import AuditLog

log = logging.getLogger(__name__)

#: How often the session's timers (idle, keep-streaming drain) are looked at.
TICK_S = 0.5
#: How often the running session's counts are written to its job row.
PERSIST_EVERY_S = 5.0
#: At a safe stop, how long the feed hold may take to come to rest before the reset.
STOP_HOLD_TIMEOUT_S = 10.0
#: Beyond this much unsent output the client is not reading: it counts as vanished.
MAX_CLIENT_BACKLOG = 1 << 20

Recorder = Callable[[str, "Principal | None", str, dict[str, Any]], Awaitable[None]]


class Bridge:
    """The TCP server, the waiting connections and the one running session."""

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        host: str,
        link: GrblLink,
        safety: SafetySupervisor,
        use: MachineUse,
        conn: aiosqlite.Connection,
        hub: EventHub,
        audit: AuditLog | None = None,
        job_active: Callable[[], bool] = lambda: False,
    ) -> None:
        self.settings = settings
        self._host = host
        self._link = link
        self._safety = safety
        self._use = use
        self._record = SessionRecord(conn, audit)
        self._hub = hub
        self._job_active = job_active
        self._allow = [ipaddress.ip_network(a, strict=False) for a in settings.allow]
        self._server: asyncio.Server | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, Connection] = {}
        self._running: Running | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._button_task: asyncio.Task[None] | None = None
        self._closing = False
        self.port: int | None = None
        #: Connections refused for their address (a figure for the UI and tests).
        self.refused = 0

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._host, self.settings.port, reuse_address=True
        )
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        self._hub.on(Trip, self._on_trip)
        log.info("GRBL bridge listening on %s:%d (allow %s)", self._host, self.port,
                 ", ".join(self.settings.allow))

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        self._hub.off(Trip, self._on_trip)
        running = self._running
        if running is not None:
            await self._stop(running, "cancelled", "shutdown", safe_stop=True)
        for c in list(self._pending.values()):
            self._drop_pending(c, "laserd is stopping")
        if self._button_task is not None:
            self._button_task.cancel()
        # Every handler ends by itself now (pending ones were told, the session has ended);
        # cancelling is only the fallback for one stuck in a write.
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        for task in list(self._handlers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    # ------------------------------------------------------------------ queries

    def view(self) -> dict[str, Any]:
        return {
            "enabled": True,
            "port": self.port,
            "allow": list(self.settings.allow),
            "pending": [c.view() for c in self._pending.values()],
            "session": session_view(self._running),
        }

    @property
    def session_open(self) -> bool:
        return self._running is not None

    def _publish(self) -> None:
        self._hub.publish("bridge", self.view())

    # ------------------------------------------------------------------ accepting

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._handle(reader, writer)
        finally:
            if task is not None:
                self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername") or ("?", 0)
        host = str(peername[0])
        if self._closing or not allowed(host, self._allow):
            self.refused += 1
            log.warning("bridge: connection from %s refused (not in [bridge] allow)", host)
            return
        if len(self._pending) >= self.settings.max_pending:
            writer.write(b"[MSG:laserd: too many connections waiting]\r\n")
            return
        keepalive(writer, self.settings.client_timeout_s)
        c = Connection(next(self._ids), f"{host}:{peername[1]}", reader, writer)
        c.accepted = asyncio.get_running_loop().create_future()
        self._pending[c.id] = c
        writer.write(
            b"[MSG:laserd: waiting for a person to accept this connection in laserd]\r\n"
        )
        log.info("bridge: %s connected, waiting to be accepted", c.peer)
        await self._record.audit("bridge_connection", None, f"bridge:{c.peer}", {"peer": c.peer})
        self._publish()
        self._watch_start_button()
        who = await wait_for_acceptance(c, self.settings.pending_timeout_s)
        if c.id in self._pending:
            del self._pending[c.id]
            self._publish()
        if who is REJECTED:
            return
        await self._serve(c, who)

    def _drop_pending(self, c: Connection, why: str) -> None:
        self._pending.pop(c.id, None)
        if c.accepted is not None and not c.accepted.done():
            c.accepted.set_result(REJECTED)
        with contextlib.suppress(Exception):
            c.writer.write(f"[MSG:laserd: {why}]\r\n".encode())

    def _pending_conn(self, pending_id: int) -> Connection:
        c = self._pending.get(pending_id)
        if c is None:
            raise errors.NotFound("No connection with this id is waiting.")
        return c

    async def accept(self, pending_id: int, who: Principal | None) -> dict[str, Any]:
        """Take the machine for a waiting connection (409 when that is not possible now)."""
        c = self._pending_conn(pending_id)
        self._check_can_open()
        claim = self._use.claim(f"bridge session from {c.peer}")  # no await before this
        try:
            running = await self._open(c, who, claim)
        except BaseException:
            self._use.release(claim)
            raise
        self._pending.pop(c.id, None)
        assert c.accepted is not None
        self._running = running
        self._hear_wire(True)
        if c.accepted.done():  # the client left while the session was being opened
            await self._stop(running, "cancelled", "client_closed")
            raise errors.Conflict("The client disconnected before the session started.",
                                  code="client_gone")
        c.accepted.set_result(who)
        self._publish()
        return self.view()

    async def reject(self, pending_id: int, who: Principal) -> dict[str, Any]:
        c = self._pending_conn(pending_id)
        self._drop_pending(c, f"connection rejected by {who.username}")
        await self._record.audit("bridge_rejected", who, f"bridge:{c.peer}", {"peer": c.peer})
        self._publish()
        return self.view()

    def _check_can_open(self) -> None:
        if self._closing:
            raise errors.Unavailable("laserd is shutting down.")
        if self._running is not None:
            raise errors.MachineBusy(
                "A bridge session is open already; end it first.",
                details={"in_use": f"bridge session from {self._running.conn.peer}"},
            )
        if self._job_active():
            raise errors.MachineBusy("A job is active; the bridge waits until it ends.")
        link = self._link
        if not link.connected:
            raise errors.Unavailable("The controller is not connected.")
        self._safety.check_can_start()
        raw = link.settings.get("$32")
        if raw is not None and raw.strip() not in ("1", "1.0"):
            raise errors.Conflict(
                "Laser mode is off on the controller ($32=0); set $32=1 first.",
                code="laser_mode_off",
            )
        if link.streaming or link.state not in (
            MachineState.IDLE, MachineState.ALARM, MachineState.CHECK
        ):
            raise errors.MachineBusy(f"The machine is busy ({link.state}).")

    async def _open(self, c: Connection, who: Principal | None, claim: Claim) -> Running:
        """Record the session, reset the overrides, raise the laser enable."""
        accepted_by = who.username if who is not None else "start button"
        await self._link.reset_overrides(timeout_s=3.0)
        row = await self._record.start(c, who)
        claim.what = f"bridge session {row['id']} from {c.peer}"
        session = Session(
            link=self._link,
            safety=self._safety,
            write=lambda data: self._write(c, data),
            on_trouble=lambda why: self._trouble(why),
            admin=who is not None and who.is_admin,
        )
        running = Running(
            conn=c,
            session=session,
            job_id=int(row["id"]),
            claim=claim,
            accepted_by=accepted_by,
            user_id=who.user_id if who is not None else None,
            started_at=row["started_at"] or utcnow(),
        )
        try:
            self._safety.arm()
        except BaseException:
            await self._record.failed_to_start(running.job_id, "interlock_open")
            raise
        await self._record.audit(
            "bridge_accepted", who, f"job:{running.job_id}",
            {"peer": c.peer, "accepted_by": accepted_by},
        )
        log.info("bridge: session %d with %s accepted by %s", running.job_id, c.peer,
                 accepted_by)
        return running

    def _watch_start_button(self) -> None:
        """Where a start button is fitted, a press accepts the oldest waiting connection."""
        if not self._safety.has_start_button or self._button_task is not None:
            return

        async def watch() -> None:
            try:
                while self._pending and not self._closing:
                    if self._running is not None or self._job_active():
                        await asyncio.sleep(TICK_S)
                        continue
                    if not await self._safety.wait_for_start(self.settings.pending_timeout_s):
                        continue
                    oldest = next(iter(self._pending.values()), None)
                    if oldest is None:
                        break
                    try:
                        await self.accept(oldest.id, None)
                    except errors.LaserdError as exc:
                        log.warning("bridge: start button: %s", exc.message)
                        self._drop_pending(oldest, f"not accepted: {exc.message}")
                        self._publish()
            finally:
                self._button_task = None

        self._button_task = asyncio.get_running_loop().create_task(watch())

    # ------------------------------------------------------------------ the session

    def _write(self, c: Connection, data: bytes) -> None:
        transport = c.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_CLIENT_BACKLOG:
            self._client_lost("client_not_reading")
            return
        c.writer.write(data)

    def _on_line(self, event: WireLine) -> None:
        """Console and status lines on the wire, heard only while a session runs (the link
        builds no line event nobody hears; the session's lines are console traffic)."""
        r = self._running
        if r is not None:  # a gone client's answers still count (keep_streaming drains them)
            r.session.on_serial_line(event.direction, event.line)

    def _hear_wire(self, on: bool) -> None:
        for kind in (SerialLine, StatusLine):
            if on:
                self._hub.on(kind, self._on_line)
            else:
                self._hub.off(kind, self._on_line)

    async def _serve(self, c: Connection, who: Any) -> None:
        r = self._running
        if r is None or r.conn is not c:
            return
        s = r.session
        s.say(f"{self._link.firmware or 'Grbl 1.1h'} ['$' for help]")
        s.message(f"session accepted by {r.accepted_by}")
        timer = asyncio.get_running_loop().create_task(self._timers(r))
        try:
            while r.end is None:
                try:
                    data = await c.reader.read(65536)
                except (ConnectionError, OSError, TimeoutError) as exc:
                    log.info("bridge: %s: %s", c.peer, exc)
                    data = b""
                if not data:
                    self._client_lost("client_closed")
                    break
                if r.end is None:
                    s.feed(data)
            await r.ended.wait()
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    async def _timers(self, r: Running) -> None:
        """Idle timeout, the keep-streaming drain and periodic saves of the counts."""
        last_save = time.monotonic()
        while r.end is None:
            await asyncio.sleep(TICK_S)
            s = r.session
            now = time.monotonic()
            if not self._link.connected:
                await self._stop(r, "failed", "link_down")
                return
            if r.client_gone:  # keep_streaming: run what was received, then end
                if s.machine_quiet():
                    await self._stop(r, "completed", "client_vanished_completed")
                continue
            if now - s.stats.last_line_mono > self.settings.idle_timeout_s and s.machine_quiet():
                s.message("no line for a while: the session ends (idle)")
                await self._stop(r, "cancelled", "idle_timeout")
                return
            if now - last_save > PERSIST_EVERY_S:
                last_save = now
                await self._record.counts(r)
                self._publish()

    def _client_lost(self, why: str) -> None:
        """The client closed, vanished or stopped reading."""
        r = self._running
        if r is None or r.client_gone or r.end is not None:
            return
        r.client_gone = True
        s = r.session
        if s.machine_quiet():
            self._spawn(self._stop(r, "completed", why))
            return
        if self.settings.keep_streaming:
            log.warning("bridge: %s gone (%s) with %d lines in flight: keep streaming",
                        r.conn.peer, why, s.in_flight)
            self._publish()
            return
        # Work in the controller and nobody watching: hold now, laser off, then a safe stop.
        self._link.pause()
        self._safety.disarm()
        log.warning("bridge: %s gone (%s) mid-job: feed hold, then a safe stop", r.conn.peer,
                    why)
        self._spawn(self._stop(r, "failed", "client_vanished", safe_stop=True))

    def _trouble(self, why: str) -> None:
        r = self._running
        if r is not None and r.end is None:
            self._spawn(self._stop(r, "failed", why))

    def _on_trip(self, trip: Trip) -> None:
        r = self._running
        if r is None or r.end is not None:
            return
        r.session.on_trip(trip.name, trip.action)
        if trip.action != "pause":  # the emergency stop: as for a web job, the session fails
            self._spawn(self._stop(r, "failed", f"interlock:{trip.name}"))
        self._publish()

    async def end(self, who: Principal) -> dict[str, Any]:
        """A user ends the session like a job: laser off, safe stop, connection closed."""
        r = self._running
        if r is None:
            raise errors.Conflict("No bridge session is open.", code="no_session")
        await self._record.audit("bridge_ended", who, f"job:{r.job_id}", {"peer": r.conn.peer})
        if r.session.in_flight or not r.session.machine_quiet():
            await self._stop(r, "cancelled", f"ended_by:{who.username}", safe_stop=True)
        else:
            await self._stop(r, "completed", f"ended_by:{who.username}")
        return self.view()

    async def _stop(self, r: Running, state: str, reason: str, *, safe_stop: bool = False) -> None:
        """Every end of a session: laser-enable output down first, then stop, then record."""
        self._safety.disarm()
        if r.end is not None:
            await r.ended.wait()
            return
        r.end = (state, reason)
        r.state = "ending"
        s = r.session
        if safe_stop and self._link.connected:
            with contextlib.suppress(Exception):
                await self._link.cancel(hold_timeout_s=STOP_HOLD_TIMEOUT_S)
        if not r.client_gone:
            s.message(f"session ended ({reason})")
        await s.close()
        self._use.release(r.claim)
        self._running = None
        self._hear_wire(False)
        elapsed = round(time.monotonic() - s.stats.started_mono, 3)
        await self._record.end(r, state, reason, elapsed)
        log.info("bridge: session %d ended: %s (%s), %d lines in %.1f s", r.job_id, state,
                 reason, s.stats.lines, elapsed)
        with contextlib.suppress(Exception):
            r.conn.writer.close()
        r.ended.set()
        self._publish()

    # ------------------------------------------------------------------ helpers

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("bridge: stopping the session failed")

        task = asyncio.get_running_loop().create_task(run())
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
