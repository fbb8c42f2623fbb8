"""The job runner: the only code that streams a job to the controller.

States (API.md): queued → waiting_start → running ⇄ paused → completed | failed | cancelled |
interrupted. One job at a time. Every way out of a job — completion, cancel, ``error:N``,
alarm, lost link, interlock trip, shutdown — passes through :meth:`JobRunner._finish`, which
drops the laser-enable output and switches air assist off before anything is recorded.

laserd never sends ``$X`` or ``~`` on its own: a resume is always a person's request, and it
goes through the safety supervisor's gate (interlocks closed for at least ``resume_delay_s``).

Around it: :mod:`laserd.job_view` (the live figures, the API shape, the ETA),
:mod:`laserd.start_checks` (what must hold before a first line) and :mod:`laserd.job_records`
(the job's row in the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import aiosqlite

from laserd import errors
from laserd.auth.principal import Principal
from laserd.db import utcnow
from laserd.events import EventHub
from laserd.grbl.errors import (
    ControllerReset,
    GrblAlarm,
    GrblError,
    LineRefused,
    LinkDown,
    StreamCancelled,
)
from laserd.grbl.link import GrblLink, StreamProgress, iter_file_lines
from laserd.grbl.protocol import MachineState
from laserd.job_records import record_end, save_progress
from laserd.job_view import TERMINAL, ActiveJob, job_view
from laserd.logs import job_id_var
from laserd.machine_use import MachineUse
from laserd.planner_settings import CHECKPOINTS_KEY
from laserd.safety.supervisor import Trip
from laserd.settings import Settings
from laserd.start_checks import check_machine_ready, check_power_scale, reset_overrides_to_100
from laserd.store import jobs as store

if TYPE_CHECKING:  # for the types only: no new import at run time
    from laserd.library.service import FileLibrary
    from laserd.safety import SafetySupervisor
    from laserd.store.audit import AuditLog

log = logging.getLogger(__name__)

PERSIST_EVERY_S = 2.0
_COOLANT = re.compile(r"M0*([789])(?![0-9.])")
#: How long the tail of a job (motion still in the planner after the last ``ok``) may take
#: between two status reports before the job is failed as unresponsive.
TAIL_STALL_S = 30.0


class JobRunner:
    """Runs one job at a time on the link, under the safety supervisor's gates."""

    def __init__(
        self,
        *,
        conn: aiosqlite.Connection,
        link: GrblLink,
        safety: SafetySupervisor,
        hub: EventHub,
        settings: Settings,
        audit: AuditLog | None = None,
        use: MachineUse | None = None,
        files: FileLibrary | None = None,
    ) -> None:
        self._conn = conn
        self._link = link
        self._safety = safety
        self._hub = hub
        self._settings = settings
        self._audit = audit
        self._active: ActiveJob | None = None
        #: The file library: its lock is held from the file's check to the job's record, so a
        #: delete or re-process of the file and this job's start are decided as one step.
        #: (None only for a runner that takes no jobs, e.g. the crash recovery of a test.)
        self._files = files
        #: Shared with machine control (frame, jog, home, console): one owner of the machine.
        self.use = use if use is not None else MachineUse()
        self._closing = False

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> list[int]:
        """Mark jobs a crash left active as ``interrupted``; watch the interlocks."""
        ids = await store.mark_interrupted(self._conn)
        for job_id in ids:
            log.warning("job %d was active when laserd stopped: marked interrupted", job_id)
        self._hub.on(Trip, self._on_trip)
        return ids

    async def close(self) -> None:
        """Shutdown: stop a running job safely and record it as cancelled (``shutdown``)."""
        self._closing = True
        self._hub.off(Trip, self._on_trip)
        active = self._active
        if active is None:
            return
        self._safety.disarm()
        await self._stop(active, ("cancelled", "shutdown"), hold_timeout_s=2.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(active.done.wait(), 10)

    # ------------------------------------------------------------------ queries

    @property
    def active(self) -> ActiveJob | None:
        return self._active

    def snapshot(self) -> dict[str, Any] | None:
        a = self._active
        return job_view(a.row, a) if a is not None else None

    async def get(self, job_id: int) -> dict[str, Any] | None:
        a = self._active
        if a is not None and a.id == job_id:
            return job_view(a.row, a)
        row = await store.get(self._conn, job_id)
        return job_view(row) if row is not None else None

    async def list(
        self, *, user_id: int | None, limit: int, offset: int, states: tuple[str, ...] | None
    ) -> tuple[list[dict[str, Any]], int]:
        rows, total = await store.list_jobs(
            self._conn, user_id=user_id, states=states, limit=limit, offset=offset
        )
        a = self._active
        return [job_view(r, a if a is not None and a.id == r["id"] else None) for r in rows], total

    # ------------------------------------------------------------------ gates

    def check_machine_ready(self) -> None:
        """Refuse (409/503) unless the controller can take a job right now."""
        check_machine_ready(self._link)

    def _check_power_scale(self) -> None:
        check_power_scale(self._link, self._settings.processing.max_power_s)

    # ------------------------------------------------------------------ commands

    async def submit(self, file: dict[str, Any], who: Principal) -> dict[str, Any]:
        if self._files is None:
            raise errors.Unavailable("This job runner takes no jobs (it has no file library).")
        async with self._files.lock:
            if self._closing:
                raise errors.Unavailable("laserd is shutting down.")
            if self._active is not None:
                raise errors.MachineBusy("Another job is active.")
            # The file as it is now (not as the caller read it): ready, not being processed,
            # its G-code on disk; nothing can delete or re-process it until the job is recorded.
            file = await self._files.file_to_run(file["id"])
            path = self._settings.gcode_path(file["id"])
            self._safety.check_can_start()
            self.check_machine_ready()
            if file.get("kind") == "image":
                self._check_power_scale()
            # Taken before the first await: a frame, jog or console line arriving while the
            # row is written finds the machine in use (it used to find no active job yet).
            claim = self.use.claim("a job starting")
            try:
                stats = file.get("stats") or {}
                laser = file.get("laser") or {}
                row = await store.insert(
                    self._conn,
                    file_id=file["id"],
                    user_id=who.user_id,
                    file_name=file["name"],
                    lines_total=int(stats.get("lines") or 0),
                )
            except BaseException:
                self.use.release(claim)
                raise
            claim.what = f"job {row['id']}"
            active = ActiveJob(
                row=row,
                path=str(path),
                estimated_s=stats.get("estimated_s"),
                air_assist=bool(laser.get("air_assist")),
                claim=claim,
                checkpoints=stats.get(CHECKPOINTS_KEY),
            )
            self._active = active
            active.task = asyncio.get_running_loop().create_task(
                self._run(active), name=f"job-{active.id}"
            )
            active.task.add_done_callback(functools.partial(self._never_ran, active))
        await self._record("job_started", who, active, {"file_id": file["id"]})
        self._publish(active)
        return job_view(active.row, active)

    def _owned(self, job_id: int, who: Principal) -> ActiveJob:
        a = self._active
        if a is None or a.id != job_id:
            raise errors.Conflict("This job is not active.", code="job_not_active")
        if not who.is_admin and a.row["user_id"] != who.user_id:
            raise errors.NotFound()
        return a

    async def pause(self, job_id: int, who: Principal) -> dict[str, Any]:
        a = self._owned(job_id, who)
        if a.state != "running":
            raise errors.Conflict(f"Only a running job can pause (it is {a.state}).")
        if not self._link.pause():
            raise errors.Unavailable("The controller is not connected.")
        a.state, a.pause_reason = "paused", "user"
        a.mark_paused()
        # Nothing needs the beam while paused; resume raises the output again.
        self._safety.disarm()
        self._publish(a)
        await self._persist(a)
        await self._record("job_paused", who, a, {})
        return job_view(a.row, a)

    async def resume(self, job_id: int, who: Principal) -> dict[str, Any]:
        a = self._owned(job_id, who)
        if a.state != "paused":
            raise errors.Conflict(f"Only a paused job can resume (it is {a.state}).")
        if not self._link.connected:
            raise errors.Unavailable("The controller is not connected.")
        self._safety.check_can_resume()  # interlocks closed, resume delay over: else 409
        if not self._safety.armed:
            self._safety.arm()  # the enable output first, so motion restarts with it up
        try:
            self._safety.resume(self._link.resume)  # gates again, "~", then the race check
        except BaseException:
            self._safety.disarm()
            raise
        reason = a.pause_reason
        a.state, a.pause_reason = "running", None
        a.mark_resumed()
        self._publish(a)
        await self._persist(a)
        await self._record("job_resumed", who, a, {"pause_reason": reason})
        return job_view(a.row, a)

    async def cancel(self, job_id: int, who: Principal) -> dict[str, Any]:
        a = self._owned(job_id, who)
        self._safety.disarm()
        await self._record("job_cancelled", who, a, {})
        await self._stop(a, ("cancelled", None))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(a.done.wait()), 15)
        return job_view(a.row, a if self._active is a else None)

    async def _stop(
        self, a: ActiveJob, outcome: tuple[str, str | None], hold_timeout_s: float = 10.0
    ) -> None:
        """End the job with ``outcome``: stop motion (hold, soft reset) and the stream."""
        if a.outcome is None:
            a.outcome = outcome
        if a.state in ("queued", "waiting_start") and a.task is not None:
            a.task.cancel()
            return
        with contextlib.suppress(Exception):
            await self._link.cancel(hold_timeout_s=hold_timeout_s)

    # ------------------------------------------------------------------ interlocks

    def _on_trip(self, trip: Trip) -> None:
        """Called on the loop after the reflex already stopped the beam."""
        name, action = trip.name, trip.action
        a = self._active
        if a is None or a.state in TERMINAL:
            return
        reason = f"interlock:{name}"
        if action == "pause" and a.state in ("running", "paused"):
            a.state, a.pause_reason = "paused", reason
            a.mark_paused()
            self._publish(a)
            asyncio.get_running_loop().create_task(self._persist(a))
        elif action == "fail" or a.state in ("queued", "waiting_start"):
            if a.outcome is None:
                a.outcome = ("failed", reason)
            if a.state in ("queued", "waiting_start") and a.task is not None:
                a.task.cancel()
            # For a running job the soft reset already sent makes the stream raise.

    # ------------------------------------------------------------------ the run

    async def _run(self, a: ActiveJob) -> None:
        token = job_id_var.set(str(a.id))
        final, error = "completed", None
        try:
            if self._safety.has_start_button:
                a.state = "waiting_start"
                self._publish(a)
                await self._persist(a)
                if not await self._safety.wait_for_start():
                    raise _End("cancelled", "start button not pressed in time")
            await self._start_at_100_percent()
            self.check_machine_ready()
            self._safety.check_can_start()
            self._safety.arm()
            self._safety.job_started()
            if a.air_assist:
                self._safety.set_air(True)
            a.state, a.started_at, a.started_mono = "running", utcnow(), time.monotonic()
            self._publish(a)
            await self._persist(a, force=True)
            await self._link.stream(self._lines(a), on_progress=self._progress(a))
            await self._wait_motion_done(a)
        except asyncio.CancelledError:
            final, error = a.outcome or ("cancelled", None)
        except _End as end:
            final, error = end.state, end.error
        except StreamCancelled:
            final, error = a.outcome or ("cancelled", None)
        except GrblError as exc:
            final = "failed"
            error = f"line {exc.lineno}: {exc.line}: error:{exc.grbl_code} {exc.meaning}"
            await self._halt()
        except GrblAlarm as exc:
            final, error = "failed", f"controller alarm: {exc.message}"
        except LinkDown:
            final, error = "failed", "controller disconnected"
        except ControllerReset:
            final, error = a.outcome or ("failed", "controller reset during the job")
        except LineRefused as exc:
            final, error = "failed", f"refused line: {exc.message}"
            await self._halt()
        except errors.LaserdError as exc:
            final, error = "failed", exc.message
            await self._halt()
        except Exception:
            log.exception("job %d failed unexpectedly", a.id)
            final, error = "failed", "internal error (see the log)"
            await self._halt()
        finally:
            if a.outcome is not None and final == "completed":
                final, error = a.outcome
            await self._finish(a, final, error)
            job_id_var.reset(token)

    async def _start_at_100_percent(self) -> None:
        """Every job starts at 100 % feed, power and rapid, confirmed by the controller."""
        refused = await reset_overrides_to_100(self._link)
        if refused is not None:
            raise _End("failed", refused)

    async def _lines(self, a: ActiveJob) -> AsyncIterator[tuple[int, str]]:
        """The file's lines, switching air assist as the program asks (M7/M8 on, M9 off).

        Air goes on when such a line is read, a few blocks before the controller reaches
        it: early air is harmless. M9 leaves the air on when the project asks for it for
        the whole job.
        """
        async for lineno, text in iter_file_lines(a.path):
            if "M" in text or "m" in text:
                code = text.split(";", 1)[0].split("(", 1)[0].upper().replace(" ", "")
                for match in _COOLANT.finditer(code):
                    on = match.group(1) in ("7", "8")
                    if on or not a.air_assist:
                        self._safety.set_air(on)
            yield lineno, text

    async def _halt(self) -> None:
        """Stop whatever is still in the controller's buffer (feed hold, soft reset)."""
        self._safety.disarm()
        with contextlib.suppress(Exception):
            await self._link.cancel(hold_timeout_s=5.0)

    async def _wait_motion_done(self, a: ActiveJob) -> None:
        """After the last ``ok`` the planner still holds motion: wait until Idle."""
        idle_since_poll = time.monotonic()
        while True:
            if a.outcome is not None:
                raise _End(*a.outcome)
            try:
                status = await self._link.wait_for_status(lambda s: True, 1.0)
            except TimeoutError:
                if not self._link.connected:
                    raise LinkDown() from None
                if time.monotonic() - idle_since_poll > TAIL_STALL_S:
                    raise _End("failed", "the controller stopped answering") from None
                continue
            idle_since_poll = time.monotonic()
            if status.state == MachineState.IDLE:
                return
            if status.state == MachineState.ALARM:
                alarm = self._link.alarm
                raise _End("failed", f"controller alarm: {alarm.message if alarm else 'alarm'}")
            await asyncio.sleep(0.1)

    def _progress(self, a: ActiveJob) -> Callable[[StreamProgress], None]:
        def on_progress(p: StreamProgress) -> None:
            a.lines_sent, a.lines_acked = p.lines_sent, p.lines_acked
            self._publish(a)
            now = time.monotonic()
            pending = a.persist_task is not None and not a.persist_task.done()
            # One save in flight at most: while another process holds the database each save
            # waits out the busy timeout, and a new one every 2 s would pile up behind it.
            if now - a.last_persist >= PERSIST_EVERY_S and not pending:
                a.last_persist = now
                a.persist_task = asyncio.get_running_loop().create_task(self._persist(a))

        return on_progress

    async def _finish(self, a: ActiveJob, state: str, error: str | None) -> None:
        # Laser off first, then the record (safety is never waiting on the database).
        self._safety.disarm()
        with contextlib.suppress(Exception):
            self._safety.set_air(False)
        with contextlib.suppress(Exception):
            self._safety.job_finished()
        # The job's overrides end with it (the next job confirms 100 % again before it runs).
        with contextlib.suppress(Exception):
            self._link.send_override_reset()
        a.state, a.error = state, error
        if state == "completed":
            a.lines_acked = max(a.lines_acked, int(a.row["lines_total"]))
            a.pause_reason = None
        finished = utcnow()
        elapsed = time.monotonic() - a.started_mono if a.started_mono is not None else 0.0
        final = {
            "state": state,
            "lines_sent": a.lines_sent,
            "lines_acked": a.lines_acked,
            "started_at": a.started_at,
            "finished_at": finished,
            "elapsed_s": round(elapsed, 3),
            "error": error,
            "pause_reason": a.pause_reason,
        }
        a.row.update(final)
        await self._record_end(a, **final)
        if self._active is a:
            self._active = None
        self.use.release(a.claim)
        log.info("job %d %s%s", a.id, state, f": {error}" if error else "")
        self._hub.publish("job", job_view(a.row))
        a.done.set()
        await self._record(f"job_{state}", None, a, {"error": error} if error else {})

    def _never_ran(self, a: ActiveJob, _task: object = None) -> None:
        """Task done callback. A job cancelled before its task took its first step (a trip
        right after the start) never reaches :meth:`_finish`; it must not hold the machine."""
        if a.done.is_set() or a.state in TERMINAL:
            return
        self._safety.disarm()
        log.warning("job %d was stopped before it ran", a.id)
        state, error = a.outcome or ("cancelled", None)
        a.state = state  # so this runs once; _finish records it and frees the machine
        asyncio.get_running_loop().create_task(self._finish(a, state, error))

    # ------------------------------------------------------------------ records

    async def _record_end(self, a: ActiveJob, **fields: Any) -> None:
        await record_end(self._conn, a.id, fields, closing=lambda: self._closing)

    async def _persist(self, a: ActiveJob, force: bool = False) -> None:
        if a.state in TERMINAL and not force:
            return
        await save_progress(self._conn, a)

    def _publish(self, a: ActiveJob) -> None:
        self._hub.publish("job", job_view(a.row, a))

    async def _record(
        self, event: str, who: Principal | None, a: ActiveJob, details: dict[str, Any]
    ) -> None:
        if self._audit is None:
            return
        await self._audit.record(
            event, actor=who, target=f"job:{a.id}", details=details, actor_name="laserd"
        )


class _End(Exception):
    """Internal: end the run with this state and error."""

    def __init__(self, state: str, error: str | None) -> None:
        super().__init__(error)
        self.state, self.error = state, error
