"""The work done for one uploaded file, inside a processing worker process.

:func:`run_processing` turns an upload into the streamable G-code (analysed and normalised, or
converted from an image) and its previews, and returns the statistics or a readable error.
It runs in a separate process (see :class:`laserd.library.processing.Processing`): image and
G-code work holds the GIL for long stretches, and the daemon's event loop, the streamer and the
safety threads must never wait for it. Progress goes back through a multiprocessing queue given
to each worker when it starts. Workers run at a lower CPU priority for the same reason.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laserd.allocator import keep_freed_memory, release_freed_memory
from laserd.designs import DesignError, convert_file, design_to_gcode
from laserd.designs.images import image_file_design
from laserd.errors import InsufficientStorage, OutputTooLarge
from laserd.gcode import GcodeError, GcodeReport, analyse_gcode
from laserd.gcode.estimate import estimate_file, estimate_stats
from laserd.gcode.output import OutputLimits
from laserd.gcode.planner import PlannerSettings
from laserd.imaging.laser_settings import LaserSettings
from laserd.imaging.preview import render_preview
from laserd.imaging.raster import ImageError, RasterReport, image_to_gcode
from laserd.schemas.designs import Placement

log = logging.getLogger(__name__)

#: Share of the progress bar taken by the conversion; the preview takes the rest.
CONVERT_SHARE = 0.85
#: Progress messages are sent at most this often per file (and on every 5 %).
PROGRESS_INTERVAL_S = 0.25
WORKER_NICE = 10

_progress_queue: Any = None


def init_worker(progress_queue: Any, daemon_pid: int | None = None) -> None:
    """Process-pool initializer: remember the progress queue, set the allocator for the
    analysis (:mod:`laserd.allocator`), step back on CPU priority, and exit when the daemon
    dies."""
    global _progress_queue
    _progress_queue = progress_queue
    keep_freed_memory()
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    if daemon_pid is not None:
        threading.Thread(
            target=_exit_with, args=(daemon_pid,), name="exit-with-daemon", daemon=True
        ).start()


def _exit_with(daemon_pid: int) -> None:
    """Thread: end this worker once the daemon process is gone.

    A worker's parent is the forkserver, not the daemon, and it holds both ends of its task
    queue, so after ``kill -9`` of the daemon it would wait forever, and keep the forkserver
    alive with it. systemd's cgroup clean-up hides this under the unit; anywhere else (dev.sh,
    tests, a crash loop) the orphans piled up. A pidfd becomes readable when the process exits.
    """
    try:
        fd = os.pidfd_open(daemon_pid)
    except OSError:
        fd = None
    if fd is not None:
        select.select([fd], [], [])
    else:
        while True:
            try:
                os.kill(daemon_pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass
            time.sleep(2.0)
    os._exit(0)


@dataclass(frozen=True, slots=True)
class ProcessRequest:
    """Everything a worker needs, as plain picklable values (paths as strings)."""

    file_id: int
    kind: str
    src: str
    gcode_out: str
    preview_out: str
    thumb_out: str
    laser: dict[str, Any]
    bed_mm: tuple[float, float]
    max_power_s: int
    max_megapixels: float
    rapid_mm_min: float
    #: The G-code may take at most this many bytes, and must leave ``reserve_bytes`` free.
    max_output_bytes: int = 1 << 62
    reserve_bytes: int = 0

    def limits(self) -> OutputLimits:
        return OutputLimits(
            self.max_output_bytes, self.reserve_bytes, Path(self.gcode_out).parent
        )
    #: The controller's ``$`` values the time estimate uses (defaults when empty).
    planner: dict[str, float] = field(default_factory=dict)
    baudrate: int = 115200
    #: A design's stored layer settings (API shape) and a design's or image's placement.
    layers: list[dict[str, Any]] | None = None
    placement: dict[str, Any] | None = None


@dataclass(slots=True)
class ProcessResult:
    ok: bool
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    #: A design's layers as read (defaults merged with the stored settings), to keep.
    layers: list[dict[str, Any]] | None = None


class Abandoned(Exception):
    """The file was deleted while a worker processed it: stop and keep nothing."""


class _Reporter:
    """Sends ``(file_id, fraction)`` sparsely (on 5 % steps or every quarter second), and
    stops the work once the file is deleted.

    Deleting a file removes its upload; the worker looks for it at most every
    :data:`PROGRESS_INTERVAL_S` (one ``stat``) and raises :class:`Abandoned`, which unwinds
    through the writers (their temporary files are removed) instead of converting on for
    minutes into a file nobody will keep.
    """

    def __init__(self, file_id: int, src: str | None = None) -> None:
        self.file_id = file_id
        self.src = src
        self.last_value = 0.0
        self.last_time = 0.0
        self.last_check = time.monotonic()

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if self.src is not None and now - self.last_check >= PROGRESS_INTERVAL_S:
            self.last_check = now
            if not os.path.exists(self.src):
                raise Abandoned()
        if _progress_queue is None:
            return
        if fraction - self.last_value < 0.05 and now - self.last_time < PROGRESS_INTERVAL_S:
            return
        self.last_value, self.last_time = fraction, now
        with contextlib.suppress(Exception):  # a full or closed queue never fails the work
            _progress_queue.put_nowait((self.file_id, round(min(1.0, fraction), 3)))


def format_issues(err: GcodeError) -> str:
    """All refusals of a G-code file in one readable line each."""
    text = "; ".join(f"line {i['line']}: {i['message']}" for i in err.issues)
    if err.truncated:
        text += "; (further problems not listed)"
    return text


def run_processing(req: ProcessRequest) -> ProcessResult:
    """Convert or analyse, then draw the previews. Never raises: errors become results."""
    report_progress = _Reporter(req.file_id, req.src)
    report: GcodeReport | RasterReport
    try:
        if req.kind in ("svg", "dxf") or (req.kind == "image" and req.placement):
            return _run_design(req, report_progress)
        if req.kind == "gcode":
            report = analyse_gcode(
                Path(req.src),
                Path(req.gcode_out),
                bed_mm=req.bed_mm,
                max_power_s=req.max_power_s,
                rapid_mm_min=req.rapid_mm_min,
                progress=lambda f: report_progress(CONVERT_SHARE * f),
                limits=req.limits(),
                planner=PlannerSettings.from_dollars(req.planner, req.baudrate),
            )
        elif req.kind == "image":
            laser = LaserSettings.model_validate(req.laser)
            report = image_to_gcode(
                Path(req.src),
                Path(req.gcode_out),
                laser,
                max_power_s=req.max_power_s,
                max_megapixels=req.max_megapixels,
                bed_mm=req.bed_mm,
                progress=lambda f: report_progress(CONVERT_SHARE * f),
                limits=req.limits(),
                planner=PlannerSettings.from_dollars(req.planner, req.baudrate),
            )
        else:
            return ProcessResult(False, error=f"files of kind {req.kind!r} cannot be processed")
        render_preview(
            Path(req.gcode_out),
            Path(req.preview_out),
            bed_mm=req.bed_mm,
            thumb_out=Path(req.thumb_out),
            bounds_mm=report.stats["bounds"] if report.stats.get("lines") else None,
            max_power_s=req.max_power_s,
            progress=lambda f: report_progress(CONVERT_SHARE + (1 - CONVERT_SHARE) * f),
        )
        report_progress(1.0)
        return ProcessResult(True, stats=report.stats, warnings=report.warnings)
    except Exception as exc:
        return _failure(req, exc)
    finally:
        release_freed_memory()


def _failure(req: ProcessRequest, exc: Exception) -> ProcessResult:
    """A failed conversion as a result the user can read (the log gets the internal ones)."""
    if isinstance(exc, Abandoned):
        log.info("file %s was deleted while it was processed: stopped", req.file_id)
        return ProcessResult(False, error="the file was deleted while it was processed")
    if isinstance(exc, GcodeError):
        return ProcessResult(False, error=format_issues(exc))
    if isinstance(exc, (DesignError, ImageError, OutputTooLarge, InsufficientStorage)):
        return ProcessResult(False, error=exc.message)
    if isinstance(exc, MemoryError):
        return ProcessResult(False, error="the file needs more memory than is available")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        # The disk filled up while writing the G-code or a preview: the atomic writers have
        # already removed their temporary files; say so in words the user can act on.
        log.warning("processing file %s: the disk is full (%s)", req.file_id, exc)
        return ProcessResult(False, error="not enough free disk space to write the result")
    log.exception("processing file %s failed", req.file_id, exc_info=exc)
    if isinstance(exc, OSError):
        return ProcessResult(False, error=f"internal error while processing ({exc.strerror})")
    return ProcessResult(False, error=f"internal error while processing ({type(exc).__name__})")


def _run_design(req: ProcessRequest, report_progress: _Reporter) -> ProcessResult:
    """An SVG or DXF design, or an image with a placement (rotation, mirror), through the
    design pipeline, which also draws the preview (each layer in its colour)."""
    laser = LaserSettings.model_validate(req.laser)
    common: dict[str, Any] = {
        "bed_mm": req.bed_mm,
        "max_power_s": req.max_power_s,
        "rapid_mm_min": req.rapid_mm_min,
        "preview_out": Path(req.preview_out),
        "thumb_out": Path(req.thumb_out),
        "progress": report_progress,
        "planner": PlannerSettings.from_dollars(req.planner, req.baudrate),
        "limits": req.limits(),
        "laser": laser,
    }
    if req.kind == "image":
        design = image_file_design(Path(req.src), laser, max_megapixels=req.max_megapixels)
        placement = Placement.model_validate(req.placement)
        report = design_to_gcode(design, Path(req.gcode_out), placement=placement, **common)
        report_progress(1.0)
        return ProcessResult(True, stats=report.stats, warnings=report.warnings)
    report = convert_file(
        Path(req.src), req.kind, Path(req.gcode_out), layers=req.layers,
        placement=req.placement, **common,
    )  # fmt: skip
    report_progress(1.0)
    return ProcessResult(True, stats=report.stats, warnings=report.warnings, layers=report.layers)


@dataclass(slots=True)
class EstimateRequest:
    """Re-estimate a processed file's G-code with other controller settings."""

    file_id: int
    gcode: str
    planner: dict[str, float]
    baudrate: int = 115200


def run_estimate(req: EstimateRequest) -> dict[str, Any] | None:
    """The estimate ``stats`` fields for the file's normalised G-code; None if it is gone."""
    try:
        settings = PlannerSettings.from_dollars(req.planner, req.baudrate)
        est = estimate_file(Path(req.gcode), settings)
    except OSError as exc:
        log.warning("re-estimating file %s: %s", req.file_id, exc)
        return None
    finally:
        release_freed_memory()
    return estimate_stats(est)
