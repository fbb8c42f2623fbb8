"""The processing queue: uploads become streamable G-code and previews, off the event loop.

A bounded pool of worker *processes* (:mod:`laserd.library.worker`) turns each upload into
streamable G-code and previews off the event loop and outside its GIL. Status goes
``pending → processing → ready | failed`` in the database; progress and status changes are
published as ``file`` events (owner and admins see them on the WebSocket). Files a crash left
``pending`` or ``processing`` are queued again at start. What may be queued, and when, is the
:class:`~laserd.library.service.FileLibrary`'s decision; this class only runs the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.queues import Queue as ProcessQueue
from typing import TYPE_CHECKING, Any

import aiosqlite

from laserd import errors
from laserd.estimates import EstimateProfile
from laserd.events import EventHub
from laserd.library.uploads import check_free_space, outputs, remove_paths
from laserd.schemas.projects import file_out
from laserd.settings import Settings
from laserd.store import files as files_store

if TYPE_CHECKING:  # the worker module loads numpy and Pillow: imported where it runs
    from laserd.library.worker import ProcessResult

log = logging.getLogger(__name__)

#: G0 speed assumed for time estimates of uploaded G-code (the controller's $110 is unknown).
DEFAULT_RAPID_MM_MIN = 5000.0


class Processing:
    """The processing queue: ``enqueue(file_id)``; ``start()`` and ``close()`` by the app."""

    def __init__(self, settings: Settings, conn: aiosqlite.Connection, hub: EventHub) -> None:
        self._settings = settings
        self._conn = conn
        self._hub = hub
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._waiting: set[int] = set()
        self._running: dict[int, dict[str, Any]] = {}
        self._again: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: ProcessPoolExecutor | None = None
        self._ctx = multiprocessing.get_context("forkserver")
        #: ``(file_id, fraction)`` messages from the workers; made with the pool.
        self._progress_q: ProcessQueue[tuple[int, float]] | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_saved: dict[int, float] = {}
        #: The upload each running file started from (its ``stored_name`` is unique for ever).
        self._stored_names: dict[int, str] = {}
        #: Running files deleted meanwhile: their outcome is dropped, their outputs removed.
        self._abandoned: set[int] = set()
        self._background: set[asyncio.Task[None]] = set()
        #: The controller settings time estimates use (last read from the controller).
        self.profile = EstimateProfile(settings.storage.state_dir, settings.machine.baudrate)
        self._reestimating: asyncio.Task[None] | None = None
        self._reestimate_again = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(None, self._remove_stale_temporaries)
        names, ids = await files_store.all_refs(self._conn)
        await self._loop.run_in_executor(None, self._remove_orphans, names, ids)
        for _ in range(self._settings.processing.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name="processing-worker"))
        leftovers = await files_store.unfinished_ids(self._conn)
        for file_id in leftovers:
            await files_store.mark_pending(self._conn, file_id)
            self.enqueue(file_id)
        if leftovers:
            log.info("processing %d file(s) left unfinished by the last run", len(leftovers))
        self.reestimate()  # files estimated with other settings (or before the planner model)

    async def close(self) -> None:
        if self._reestimating is not None:
            self._reestimating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reestimating
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._stop.set()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in processes:  # an unfinished file is simply processed again next start
                with contextlib.suppress(Exception):
                    proc.terminate()
        if self._reader is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._reader.join, 2.0)
            self._reader = None

    def _remove_stale_temporaries(self) -> None:
        """Half-written outputs and uploads of a previous run (killed mid-write); nothing else
        writes there before the app starts serving."""
        s = self._settings
        stale = [*s.generated_dir.glob(".*.tmp"), *s.tmp_dir.glob("upload-*.part")]
        remove_paths(stale)
        if stale:
            log.info("removed %d stale temporary file(s)", len(stale))

    def _remove_orphans(self, names: set[str], ids: set[int]) -> None:
        """Files no row points at: an upload renamed into place just before a ``kill -9``
        (its row never written), or artefacts of a row deleted with its owner."""
        s = self._settings
        orphans = [p for p in s.uploads_dir.iterdir() if p.is_file() and p.name not in names]
        for p in s.generated_dir.iterdir():
            head = p.name.split(".", 1)[0]
            if p.is_file() and head.isdigit() and int(head) not in ids:
                orphans.append(p)
        remove_paths(orphans)
        if orphans:
            log.info("removed %d file(s) that no upload record points at", len(orphans))

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            if self._progress_q is None:
                self._progress_q = self._ctx.Queue()
                self._reader = threading.Thread(
                    target=self._read_progress, name="processing-progress", daemon=True
                )
                self._reader.start()
            from laserd.library.worker import init_worker

            # Workers fork from a server that has the heavy modules imported once.
            self._ctx.set_forkserver_preload(["laserd.library.worker"])
            self._pool = ProcessPoolExecutor(
                max_workers=self._settings.processing.workers,
                mp_context=self._ctx,
                initializer=init_worker,
                initargs=(self._progress_q, os.getpid()),
            )
        return self._pool

    # ------------------------------------------------------------------ queue

    def enqueue(self, file_id: int) -> None:
        """Queue a file; if it is being processed right now, process it again afterwards."""
        if file_id in self._running:
            self._again.add(file_id)
        elif file_id not in self._waiting:
            self._waiting.add(file_id)
            self._queue.put_nowait(file_id)

    def is_busy(self, file_id: int) -> bool:
        """Queued or being processed: its G-code is about to change."""
        return file_id in self._running or file_id in self._waiting

    def is_running(self, file_id: int) -> bool:
        """A worker is converting it right now (cannot be taken back)."""
        return file_id in self._running

    def discard(self, file_id: int) -> None:
        """The file is being deleted: take it off the queue, or abandon its running work.

        A worker converting it stops once it sees the upload gone (:mod:`laserd.library.worker`);
        whatever it wrote is removed when it reports back, and nothing is recorded.
        """
        self._waiting.discard(file_id)
        self._again.discard(file_id)
        if file_id in self._running:
            self._abandoned.add(file_id)

    async def _worker(self) -> None:
        while True:
            file_id = await self._queue.get()
            if file_id not in self._waiting:
                continue  # taken off the queue (deleted), or a duplicate entry
            # Queued → running in one step (no await between): the library's "may it be
            # deleted?" never sees a file that is in neither state.
            self._waiting.discard(file_id)
            self._running[file_id] = {"id": file_id}
            try:
                await self._process(file_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("processing file %s failed unexpectedly", file_id)
                with contextlib.suppress(Exception):
                    await self._finish(file_id, None, "internal error while processing")
            finally:
                self._running.pop(file_id, None)
                self._last_saved.pop(file_id, None)
                self._stored_names.pop(file_id, None)
                self._abandoned.discard(file_id)
            if file_id in self._again:
                self._again.discard(file_id)
                self.enqueue(file_id)

    async def _process(self, file_id: int) -> None:
        from laserd.library.worker import ProcessRequest, ProcessResult

        row = await files_store.get(self._conn, file_id)
        if row is None or row["status"] not in ("pending", "processing"):
            return
        await files_store.mark_processing(self._conn, file_id)
        row.update(status="processing", progress=0.0, error=None)
        self._running[file_id] = row
        self._stored_names[file_id] = row["stored_name"]
        self._publish(row)
        s = self._settings
        try:
            check_free_space(s)
        except errors.InsufficientStorage:
            await self._finish(file_id, None, "not enough free disk space to process the file")
            return
        s.generated_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        req = ProcessRequest(
            file_id=file_id,
            kind=row["kind"],
            src=str(s.uploads_dir / row["stored_name"]),
            gcode_out=str(s.gcode_path(file_id)),
            preview_out=str(s.preview_path(file_id)),
            thumb_out=str(s.preview_path(file_id, thumb=True)),
            laser=row["laser"] or {},
            bed_mm=(s.machine.bed_mm.x, s.machine.bed_mm.y),
            max_power_s=s.processing.max_power_s,
            max_megapixels=s.processing.max_image_megapixels,
            rapid_mm_min=float((row["laser"] or {}).get("travel_mm_min") or DEFAULT_RAPID_MM_MIN)
            if row["kind"] == "image"
            else DEFAULT_RAPID_MM_MIN,
            max_output_bytes=s.processing.max_gcode_mb * 1024 * 1024,
            reserve_bytes=s.storage.min_free_mb * 1024 * 1024,
            planner=self.profile.dollars,
            baudrate=self.profile.baudrate,
            layers=row.get("layers"),
            placement=row.get("placement"),
        )
        from laserd.library.worker import run_processing

        loop = asyncio.get_running_loop()
        try:
            result: ProcessResult = await loop.run_in_executor(
                self._executor(), run_processing, req
            )
        except BrokenProcessPool:
            log.error("a processing worker died on file %s; restarting the pool", file_id)
            broken, self._pool = self._pool, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            result = ProcessResult(False, error="processing crashed (out of memory?)")
        if result.ok:
            await self._finish(file_id, result, None)
        else:
            await self._finish(file_id, None, result.error or "processing failed")

    async def _finish(self, file_id: int, result: ProcessResult | None, error: str | None) -> None:
        """Record a worker's outcome: ``result`` when it succeeded, else ``error``."""
        current = await files_store.get(self._conn, file_id)
        started_with = self._stored_names.pop(file_id, None)
        abandoned = file_id in self._abandoned
        self._abandoned.discard(file_id)
        if (
            abandoned
            or current is None
            or (started_with and current["stored_name"] != started_with)
        ):
            # Gone while processing (or its id now names another upload: SQLite reuses the
            # highest id after a delete): drop what the worker just wrote, record nothing.
            await asyncio.get_running_loop().run_in_executor(
                None, remove_paths, outputs(self._settings, file_id)
            )
            return
        if result is not None:
            done = result
            await self._write_until_done(
                file_id,
                lambda: files_store.mark_done(
                    self._conn, file_id, stats=done.stats, warnings=done.warnings,
                    layers=done.layers,
                ),
            )
        else:
            reason = error or "processing failed"
            await self._write_until_done(
                file_id, lambda: files_store.mark_failed(self._conn, file_id, reason)
            )
            await asyncio.get_running_loop().run_in_executor(
                None, remove_paths, outputs(self._settings, file_id)
            )
        row = await files_store.get(self._conn, file_id)
        if row is not None:
            self._publish(row)
            log.info("file %s %s", file_id, row["status"])

    async def _write_until_done(self, file_id: int, write: Callable[[], Awaitable[Any]]) -> None:
        """Record the outcome, retrying while another process holds the database.

        A write that outlasts SQLite's busy timeout used to fall into the "failed unexpectedly"
        path: a file processed without fault was marked failed and its G-code deleted.
        """
        delay_s = 0.5
        while True:
            try:
                await write()
                return
            except sqlite3.OperationalError as exc:
                log.warning("file %s: cannot record the result yet (%s); retrying", file_id, exc)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 5.0)

    async def _save_progress(self, file_id: int, fraction: float) -> None:
        """Progress is advisory: a locked database just skips this save."""
        try:
            await files_store.set_progress(self._conn, file_id, fraction)
        except sqlite3.OperationalError as exc:
            log.debug("file %s: progress not saved (%s)", file_id, exc)

    # ------------------------------------------------------------------ estimates

    def controller_settings(self, link_settings: dict[str, str]) -> None:
        """The link's current ``$$`` values: re-estimate ready files if those that matter to
        the time estimate changed."""
        if self.profile.update(link_settings):
            log.info("controller settings changed: re-estimating ready files")
            self.reestimate()

    def reestimate(self) -> None:
        """Re-estimate (off the loop) every ready file whose estimate used other settings."""
        if self._reestimating is not None and not self._reestimating.done():
            self._reestimate_again = True
            return
        self._reestimating = asyncio.get_running_loop().create_task(
            self._reestimate_all(), name="reestimate"
        )

    async def _reestimate_all(self) -> None:
        from laserd.library.worker import EstimateRequest, run_estimate

        while True:
            self._reestimate_again = False
            dollars = self.profile.dollars
            todo = [
                fid
                for fid, used in await files_store.ready_estimates(self._conn)
                if self.profile.differs_from(used)
            ]
            loop = asyncio.get_running_loop()
            for file_id in todo:
                if self._reestimate_again:
                    break  # the settings changed again: start over with the new ones
                if self.is_busy(file_id):
                    continue  # being processed: its new stats will use the current settings
                req = EstimateRequest(
                    file_id,
                    str(self._settings.gcode_path(file_id)),
                    dollars,
                    self.profile.baudrate,
                )
                try:
                    fields = await loop.run_in_executor(self._executor(), run_estimate, req)
                except BrokenProcessPool:
                    broken, self._pool = self._pool, None
                    if broken is not None:
                        broken.shutdown(wait=False, cancel_futures=True)
                    continue
                if fields is None:
                    continue
                try:
                    updated = await files_store.update_estimate(self._conn, file_id, fields)
                except sqlite3.OperationalError as exc:
                    log.warning("file %s: estimate not saved (%s)", file_id, exc)
                    continue
                if updated:
                    row = await files_store.get(self._conn, file_id)
                    if row is not None:
                        self._publish(row)
            if not self._reestimate_again:
                return

    # ------------------------------------------------------------------ progress

    def _publish(self, row: dict[str, Any]) -> None:
        self._hub.publish("file", file_out(row))

    def _read_progress(self) -> None:
        """Thread: forward worker progress messages to the event loop."""
        progress_q = self._progress_q
        if progress_q is None:
            return
        while not self._stop.is_set():
            try:
                file_id, fraction = progress_q.get(timeout=0.5)
            except queue.Empty:
                continue
            except (EOFError, OSError, ValueError):
                return
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_progress, file_id, fraction)

    def _on_progress(self, file_id: int, fraction: float) -> None:
        row = self._running.get(file_id)
        if row is None or "stored_name" not in row or file_id in self._abandoned:
            return  # not started yet, or deleted meanwhile
        row["progress"] = fraction
        self._publish(row)
        now = asyncio.get_running_loop().time()
        if now - self._last_saved.get(file_id, 0.0) >= 1.0:
            self._last_saved[file_id] = now
            task = asyncio.create_task(self._save_progress(file_id, fraction))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
