"""Upload storage and the processing queue.

Uploads: the multipart body is streamed to a temporary file in the state folder (never held in
memory), with the size limit enforced while streaming and the SHA-256 computed on the way.
The type is decided from the content alone (image signatures; G-code by a sniff of its code,
comments skipped, under any file name), the display name is sanitised, and the stored name is
generated: nothing the client sends becomes part of a path. The finished upload is renamed into
place atomically, and any failure (limit, type, disk space, disconnect) removes the partial file.

Processing: a bounded pool of worker *processes* (:mod:`laserd.processing`) turns each upload
into streamable G-code and previews off the event loop and outside its GIL. Status goes
``pending → processing → ready | failed`` in the database; progress and status changes are
published as ``file`` events (owner and admins see them on the WebSocket). Files a crash left
``pending`` or ``processing`` are queued again at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import multiprocessing
import os
import queue
import shutil
import sqlite3
import tempfile
import threading
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.queues import Queue as ProcessQueue
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from laserd import errors
from laserd.estimates import EstimateProfile
from laserd.events import EventHub
from laserd.gcode.sniff import GcodeSniffer
from laserd.keys import DB, HUB, LINK, PROCESSING, SETTINGS
from laserd.schemas.projects import file_out
from laserd.settings import Settings
from laserd.store import files as files_store

if TYPE_CHECKING:  # the worker module loads numpy and Pillow: imported where it runs
    from laserd.processing import ProcessResult

log = logging.getLogger(__name__)

#: Bytes kept from the start of an upload for the image signatures.
SNIFF_BYTES = 64
READ_CHUNK_BYTES = 256 * 1024
#: Bytes gathered before one hand-over to the writer thread (hashing and writing).
FLUSH_BYTES = 1 << 20
#: Multipart framing allowance over the file size when checking Content-Length early.
MULTIPART_SLACK_BYTES = 64 * 1024
#: Other form fields are read and ignored, up to this much in total.
MAX_OTHER_FIELDS_BYTES = 64 * 1024
MAX_NAME_CHARS = 120
#: How often the controller's settings are compared with those the estimates used.
SETTINGS_POLL_S = 2.0
#: G0 speed assumed for time estimates of uploaded G-code (the controller's $110 is unknown).
DEFAULT_RAPID_MM_MIN = 5000.0


# --------------------------------------------------------------------------- names and types


def sanitize_name(raw: str | None) -> str:
    """A display name: no directories, no control or format characters, bounded length."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(" " if ch.isspace() else ch for ch in name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = " ".join(name.split()).strip(" .")
    if not name:
        return "upload"
    if len(name) > MAX_NAME_CHARS:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        name = stem[: MAX_NAME_CHARS - len(ext)].rstrip(" .") + ext
    return name


def _image_type(head: bytes) -> str | None:
    """File extension for a supported image signature, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ".gif"
    if head.startswith(b"BM") and len(head) >= 26:
        return ".bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return ".webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return ".tif"
    return None


#: What the 415 answer lists as accepted.
ACCEPTED_TYPES = (
    "G-code (text of G-code commands, under any file name: .gcode .gco .g .nc .cnc .ngc .tap "
    ".txt ...) or an image (PNG, JPEG, BMP, GIF, WebP, TIFF)"
)


def detect_kind(head: bytes, sniffer: GcodeSniffer) -> tuple[str, str]:
    """``(kind, stored extension)`` from the content alone, else 415 saying why.

    Images by their signature in ``head``; G-code by :class:`~laserd.gcode.sniff.GcodeSniffer`
    (fed the whole upload as it streamed). The client's file name plays no part.
    """
    ext = _image_type(head)
    if ext is not None:
        return "image", ext
    verdict = sniffer.verdict()
    if verdict.gcode:
        return "gcode", ".gcode"
    raise errors.UnsupportedMediaType(
        f"Not a supported file: {verdict.reason}. Accepted: {ACCEPTED_TYPES}."
    )


# --------------------------------------------------------------------------- upload streaming


class _Sink:
    """A temporary file being filled, hashed and sniffed; every method runs in a worker thread."""

    def __init__(self, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=tmp_dir)
        self.path = Path(name)
        self.fh = os.fdopen(fd, "wb")
        self.sha = hashlib.sha256()
        self.sniffer = GcodeSniffer()

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.sniffer.feed(data)
        self.fh.write(data)

    def finish(self, dest: Path) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.path, dest)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass(slots=True)
class StoredUpload:
    name: str
    kind: str
    size: int
    sha256: str
    stored_name: str


#: ``OSError.errno`` values that mean the disk (or the process's file-size limit) is full.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def check_free_space(settings: Settings, incoming_bytes: int = 0) -> None:
    """507 when storing ``incoming_bytes`` would leave less than ``min_free_mb`` free."""
    free = _free_bytes(settings.storage.state_dir)
    if free - incoming_bytes < settings.storage.min_free_mb * 1024 * 1024:
        raise errors.InsufficientStorage(
            "Not enough free disk space on the laserd host for this file."
        )


async def _file_part(request: web.Request) -> BodyPartReader:
    """The multipart part named ``file``; other fields are read (bounded) and ignored."""
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise errors.BadRequest(f"The multipart body is malformed: {exc}") from None
    other_bytes = 0
    while True:
        try:
            part = await reader.next()
        except (ValueError, HttpProcessingError) as exc:
            # aiohttp refuses control characters and other garbage in part headers.
            raise errors.BadRequest(f"The multipart body is malformed: {exc}") from None
        if part is None:
            raise errors.ValidationFailed.field(
                "file", "a multipart field named 'file' is required"
            )
        if not isinstance(part, BodyPartReader):
            raise errors.BadRequest("Nested multipart bodies are not accepted.")
        if part.name == "file":
            return part
        while chunk := await part.read_chunk(8192):
            other_bytes += len(chunk)
            if other_bytes > MAX_OTHER_FIELDS_BYTES:
                raise errors.PayloadTooLarge("The form fields besides the file are too large.")


async def receive_upload(request: web.Request, settings: Settings) -> StoredUpload:
    """Stream the ``file`` part of a multipart request into ``uploads/`` (see module doc)."""
    if request.content_type != "multipart/form-data":
        raise errors.BadRequest(
            "Uploads are multipart/form-data with the file in a field named 'file'."
        )
    limit = settings.storage.max_upload_mb * 1024 * 1024
    too_large = errors.PayloadTooLarge(
        f"The file is larger than the limit of {settings.storage.max_upload_mb} MB."
    )
    declared = request.content_length
    if declared is not None and declared > limit + MULTIPART_SLACK_BYTES:
        raise too_large
    check_free_space(settings, min(request.content_length or 0, limit))
    part = await _file_part(request)
    name = sanitize_name(part.filename)
    loop = asyncio.get_running_loop()
    sink = await loop.run_in_executor(None, _Sink, settings.tmp_dir)
    try:
        head = bytearray()
        pending = bytearray()
        size = 0
        while chunk := await part.read_chunk(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise too_large
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            pending += chunk
            if len(pending) >= FLUSH_BYTES:
                data = bytes(pending)
                pending.clear()
                await loop.run_in_executor(None, sink.write, data)
        if pending:
            await loop.run_in_executor(None, sink.write, bytes(pending))
        if size == 0:
            raise errors.ValidationFailed.field("file", "the file is empty")
        kind, ext = detect_kind(bytes(head), sink.sniffer)
        check_free_space(settings)
        stored_name = f"{uuid.uuid4().hex}{ext}"
        settings.uploads_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await loop.run_in_executor(None, sink.finish, settings.uploads_dir / stored_name)
        return StoredUpload(name, kind, size, sink.sha.hexdigest(), stored_name)
    except BaseException as exc:
        await asyncio.shield(loop.run_in_executor(None, sink.discard))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            # The disk filled up while the body streamed in (the size was not declared, or
            # something else wrote meanwhile): the part file is gone, answer 507, not 500.
            log.warning("upload refused: the disk filled up while writing it (%s)", exc)
            raise errors.InsufficientStorage(
                "The disk of the laserd host filled up while storing this file."
            ) from None
        raise


def artefacts(settings: Settings, file: dict[str, Any]) -> list[Path]:
    """Every path on disk that belongs to a file row."""
    fid = int(file["id"])
    return [
        settings.uploads_dir / file["stored_name"],
        settings.gcode_path(fid),
        settings.preview_path(fid),
        settings.preview_path(fid, thumb=True),
    ]


def remove_paths(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --------------------------------------------------------------------------- processing


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
            from laserd.processing import init_worker

            # Workers fork from a server that has the heavy modules imported once.
            self._ctx.set_forkserver_preload(["laserd.processing"])
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
        return file_id in self._running or file_id in self._waiting

    async def _worker(self) -> None:
        while True:
            file_id = await self._queue.get()
            self._waiting.discard(file_id)
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
            if file_id in self._again:
                self._again.discard(file_id)
                self.enqueue(file_id)

    async def _process(self, file_id: int) -> None:
        from laserd.processing import ProcessRequest, ProcessResult

        row = await files_store.get(self._conn, file_id)
        if row is None or row["status"] not in ("pending", "processing"):
            return
        await files_store.mark_processing(self._conn, file_id)
        row.update(status="processing", progress=0.0, error=None)
        self._running[file_id] = row
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
        )
        from laserd.processing import run_processing

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
        if await files_store.get(self._conn, file_id) is None:
            # Deleted while processing: drop what the worker just wrote.
            await asyncio.get_running_loop().run_in_executor(
                None,
                remove_paths,
                [
                    self._settings.gcode_path(file_id),
                    self._settings.preview_path(file_id),
                    self._settings.preview_path(file_id, thumb=True),
                ],
            )
            return
        if result is not None:
            done = result
            await self._write_until_done(
                file_id,
                lambda: files_store.mark_done(
                    self._conn, file_id, stats=done.stats, warnings=done.warnings
                ),
            )
        else:
            reason = error or "processing failed"
            await self._write_until_done(
                file_id, lambda: files_store.mark_failed(self._conn, file_id, reason)
            )
            await asyncio.get_running_loop().run_in_executor(
                None,
                remove_paths,
                [
                    self._settings.gcode_path(file_id),
                    self._settings.preview_path(file_id),
                    self._settings.preview_path(file_id, thumb=True),
                ],
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
        from laserd.processing import EstimateRequest, run_estimate

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
        if row is None:
            return
        row["progress"] = fraction
        self._publish(row)
        now = asyncio.get_running_loop().time()
        if now - self._last_saved.get(file_id, 0.0) >= 1.0:
            self._last_saved[file_id] = now
            task = asyncio.create_task(self._save_progress(file_id, fraction))
            self._background.add(task)
            task.add_done_callback(self._background.discard)


async def estimates_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context (after the link): follows the controller's ``$$`` settings, which the
    link reads on every connect, so estimates use the machine's real limits."""
    service, link = app[PROCESSING], app[LINK]

    async def watch() -> None:
        while True:
            if link.connected:
                service.controller_settings(link.settings)
            await asyncio.sleep(SETTINGS_POLL_S)

    task = asyncio.create_task(watch(), name="estimate-settings-watch")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def processing_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the processing queue (after the database, before the job runner)."""
    service = Processing(app[SETTINGS], app[DB], app[HUB])
    app[PROCESSING] = service
    await service.start()
    try:
        yield
    finally:
        await service.close()
