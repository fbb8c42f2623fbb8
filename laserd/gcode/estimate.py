"""Time estimates of G-code files from the planner model (:mod:`laserd.gcode.planner`).

:func:`feed_chunk` hands one :class:`~laserd.gcode.program.Chunk` of the reader to an
:class:`~laserd.gcode.planner.Estimator`, so the analysis estimates in the same pass that
validates and normalises; :func:`estimate_file` replays an already normalised file (when the
controller's settings change, or for generated raster G-code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from laserd.gcode.planner import Estimate, Estimator, Moves, PlannerSettings
from laserd.gcode.program import Chunk, ProgramReader, Progress
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
    est = Estimator(settings)
    for chunk in reader.chunks():
        feed_chunk(est, chunk)
    return est.finish()




def estimate_stats(estimate: Estimate) -> dict[str, Any]:
    """The ``stats`` fields an estimate fills (API.md "Estimates"), and the checkpoint table
    ``[[lines_acked, seconds], ...]`` the job runner interpolates."""
    return {
        "estimated_s": round(estimate.total_s, 2),
        "estimate_settings": estimate.settings.as_dollars(),
        CHECKPOINTS_KEY: [[int(line), float(t)] for line, t in estimate.checkpoints],
    }
