"""Time estimates of G-code files from the planner model (:mod:`laserd.gcode.planner`).

:func:`feed_chunk` hands one :class:`~laserd.gcode.program.Chunk` of the reader to an
:class:`~laserd.gcode.planner.Estimator`, so the analysis estimates in the same pass that
validates and normalises; :class:`BackgroundEstimator` does that on a second thread, beside
the reader; :func:`estimate_file` replays an already normalised file (when the controller's
settings change, or for generated raster G-code).
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from laserd.gcode.planner import Estimate, Estimator, Moves, PlannerSettings
from laserd.gcode.program import Chunk, ProgramReader, Progress
from laserd.gcode.segments import MotionStats
from laserd.planner_settings import CHECKPOINTS_KEY


def feed_chunk(est: Estimator, chunk: Chunk) -> None:
    """Add a chunk's lines and moves to the estimator."""
    seg = chunk.segments
    n = len(seg)
    if n:
        z = seg.z1 if seg.z1 is not None else np.zeros(n)
        line = seg.line if seg.line is not None else np.zeros(n, dtype=np.int64)
        moves = Moves(seg.x1, seg.y1, z, seg.rapid, seg.feed_mm_min, line, seg.m3)
    else:
        moves = Moves.empty()
    est.add(moves, chunk.line_bytes, chunk.sync_lines, chunk.sync_dwell, chunk.s_lines)


def _cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class BackgroundEstimator:
    """Feeds an :class:`Estimator` on its own thread while the caller reads the next chunk.

    Why: reading (validation, numbers, the normalised copy) and planning take about the same
    time per chunk, and both are whole-array numpy work, which runs without the GIL. On two
    cores or more (a Pi has four) they overlap, and a big raster file is analysed in little
    more than the time of the slower half (on one core the work is done in line: a thread
    would only add its switching). The motion statistics (bounds, distances), when given, are
    summed on the same thread: the reader does not need them either. At most ``depth``
    chunks wait between the two, so memory stays constant.

    Use it as a context manager: leaving the block early (a refusal, an abandoned upload)
    stops the thread at once; :meth:`feed` or :meth:`finish` raise what the planner raised.
    """

    def __init__(
        self,
        estimator: Estimator,
        stats: MotionStats | None = None,
        depth: int = 2,
        threaded: bool | None = None,
    ) -> None:
        self._est = estimator
        self._stats = stats
        self._queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None
        if threaded is None:
            threaded = _cores() > 1
        if threaded:
            self._thread = threading.Thread(target=self._run, name="gcode-estimate", daemon=True)
            self._thread.start()

    def _work(self, chunk: Chunk) -> None:
        feed_chunk(self._est, chunk)
        if self._stats is not None:
            self._stats.add(chunk.segments)
            self._stats.add_time(chunk.extra_s)

    def _run(self) -> None:
        # Always drains the queue, so a producer never waits on a thread that gave up.
        while (chunk := self._queue.get()) is not None:
            if self._error is None and not self._stopped:
                try:
                    self._work(chunk)
                except BaseException as exc:  # handed to the caller by feed/finish
                    self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def feed(self, chunk: Chunk) -> None:
        """Hand over a chunk (waits while ``depth`` chunks are queued already)."""
        self._raise_error()
        if self._thread is None:
            self._work(chunk)
        else:
            self._queue.put(chunk)

    def finish(self) -> Estimate:
        """Wait for the chunks handed over, then close the estimate."""
        self._stop(cancel=False)
        self._raise_error()
        return self._est.finish()

    def _stop(self, cancel: bool) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._stopped = cancel
            self._queue.put(None)
            self._thread.join()

    def __enter__(self) -> BackgroundEstimator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop(cancel=True)


def estimate_file(
    path: Path, settings: PlannerSettings, progress: Progress | None = None
) -> Estimate:
    """Replay a normalised G-code file through the planner model (constant memory)."""
    reader = ProgramReader(
        Path(path),
        rapid_mm_min=settings.max_rate_mm_min[0],
        progress=progress,
        arc_tolerance_mm=settings.arc_tolerance_mm,
    )
    with BackgroundEstimator(Estimator(settings)) as est:
        for chunk in reader.chunks():
            est.feed(chunk)
        return est.finish()


def estimate_stats(estimate: Estimate) -> dict[str, Any]:
    """The ``stats`` fields an estimate fills (API.md "Estimates"), and the checkpoint table
    ``[[lines_acked, seconds], ...]`` the job runner interpolates."""
    return {
        "estimated_s": round(estimate.total_s, 2),
        "estimate_settings": estimate.settings.as_dollars(),
        CHECKPOINTS_KEY: [[int(line), float(t)] for line, t in estimate.checkpoints],
    }
