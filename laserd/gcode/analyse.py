"""``analyse_gcode``: validate an uploaded G-code file and write the copy that is streamed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laserd.gcode.errors import GcodeError
from laserd.gcode.estimate import BackgroundEstimator, estimate_stats
from laserd.gcode.output import OutputLimits, SpaceGuard, atomic_writer
from laserd.gcode.planner import Estimator, PlannerSettings
from laserd.gcode.program import ProgramReader, Progress
from laserd.gcode.segments import MotionStats

DEFAULT_RAPID_MM_MIN = 5000.0


@dataclass(slots=True)
class GcodeReport:
    """What the processing queue stores for a file: ``stats`` (API.md) and human warnings."""

    stats: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def analyse_gcode(
    src: Path,
    out: Path,
    *,
    bed_mm: tuple[float, float],
    max_power_s: int,
    progress: Progress | None = None,
    rapid_mm_min: float = DEFAULT_RAPID_MM_MIN,
    limits: OutputLimits | None = None,
    planner: PlannerSettings | None = None,
) -> GcodeReport:
    """Check ``src`` against GRBL 1.1's dialect, write the normalised copy to ``out``.

    Synchronous and CPU-bound: run it in a worker. Memory stays constant whatever the file
    size. On refusal a :class:`GcodeError` lists up to ``MAX_ISSUES`` problems with their
    line numbers and ``out`` is left untouched. With ``limits`` the copy stops (and is
    removed) when the disk's free space falls below the reserve. The time estimate replays the
    program through the model of GRBL's planner with ``planner`` (the controller's settings;
    GRBL laser defaults when None), in the same pass.
    """
    planner = planner or PlannerSettings()
    reader = ProgramReader(
        Path(src),
        rapid_mm_min=rapid_mm_min,
        progress=progress,
        arc_tolerance_mm=planner.arc_tolerance_mm,
    )
    stats = MotionStats(rapid_mm_min=rapid_mm_min)
    # The estimate and the motion statistics are worked out beside the reader (a thread).
    background = BackgroundEstimator(Estimator(planner), stats)
    with atomic_writer(Path(out)) as fh, background as estimator:
        guard = SpaceGuard(fh, limits) if limits is not None else None
        for chunk in reader.chunks():
            stats.lines += chunk.lines
            if not reader.issues:
                fh.write(chunk.text)
                if guard is not None:
                    guard.check()
                estimator.feed(chunk)
        if not reader.issues and stats.lines == 0:
            reader.issues.append({"line": 1, "message": "the file holds no G-code commands"})
        if reader.issues:
            raise GcodeError(reader.issues, truncated=reader.truncated)
        estimate = estimator.finish()
    warnings = stats.bed_warnings(bed_mm) + stats.power_warnings(max_power_s)
    if reader.state.homes:
        warnings.append("the job homes the machine ($H)")
    if stats.laser_on_mm == 0:
        warnings.append("the laser never burns: no G1/G2/G3 move with M3/M4 and S above 0")
    if reader.state.spindle != 5:
        warnings.append("the program ends with the laser enabled (no M5 or M2 at the end)")
    out_stats = stats.as_dict()
    out_stats.update(estimate_stats(estimate))
    return GcodeReport(stats=out_stats, warnings=warnings)
