"""The controller values a time estimate depends on, and reading an estimate's checkpoints.

Kept apart from :mod:`laserd.gcode.planner` (which needs numpy) so that the daemon's main
process can know and compare settings and interpolate a job's ETA without importing numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Planner blocks usable at once (BLOCK_BUFFER_SIZE 16, one slot always free).
PLANNER_BLOCKS = 15
#: Serial receive buffer of GRBL 1.1 (RX_BUFFER_SIZE).
RX_BUFFER_BYTES = 128
#: Where a file's stats keep the estimate's checkpoint table (not part of the API shape).
CHECKPOINTS_KEY = "estimate_checkpoints"


def _num(values: Mapping[str, Any], key: str, default: float) -> float:
    raw = values.get(key, values.get(f"${key}"))
    if raw is None:
        return default
    try:
        out = float(raw)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    """The controller values a time estimate depends on (GRBL ``$`` numbers in comments)."""

    junction_deviation_mm: float = 0.010  # $11
    arc_tolerance_mm: float = 0.002  # $12
    max_spindle_s: float = 1000.0  # $30
    laser_mode: bool = True  # $32
    steps_per_mm: tuple[float, float, float] = (80.0, 80.0, 400.0)  # $100-$102
    max_rate_mm_min: tuple[float, float, float] = (6000.0, 6000.0, 1000.0)  # $110-$112
    accel_mm_s2: tuple[float, float, float] = (1000.0, 1000.0, 100.0)  # $120-$122
    baudrate: int = 115200
    rx_buffer_bytes: int = RX_BUFFER_BYTES
    planner_blocks: int = PLANNER_BLOCKS

    #: The ``$`` numbers used, in the order :meth:`as_dollars` lists them.
    DOLLARS = ("11", "12", "30", "32", "100", "101", "102", "110", "111", "112", "120", "121",
               "122")  # fmt: skip

    @classmethod
    def from_dollars(cls, values: Mapping[str, Any], baudrate: int = 115200) -> PlannerSettings:
        """Build from ``$$`` values keyed ``"110"`` or ``"$110"`` (missing ones: defaults)."""
        d = cls()

        def axis(base: int, cur: tuple[float, float, float]) -> tuple[float, float, float]:
            got = [_num(values, str(base + i), cur[i]) for i in range(3)]
            return (got[0], got[1], got[2])

        return cls(
            junction_deviation_mm=max(0.0, _num(values, "11", d.junction_deviation_mm)),
            arc_tolerance_mm=max(1e-6, _num(values, "12", d.arc_tolerance_mm)),
            max_spindle_s=_num(values, "30", d.max_spindle_s),
            laser_mode=_num(values, "32", 1.0 if d.laser_mode else 0.0) != 0,
            steps_per_mm=axis(100, d.steps_per_mm),
            max_rate_mm_min=axis(110, d.max_rate_mm_min),
            accel_mm_s2=axis(120, d.accel_mm_s2),
            baudrate=baudrate,
        )

    def as_dollars(self) -> dict[str, float]:
        """The values used, keyed by ``$`` number (what ``stats.estimate_settings`` shows)."""
        vals = (
            self.junction_deviation_mm,
            self.arc_tolerance_mm,
            self.max_spindle_s,
            1.0 if self.laser_mode else 0.0,
            *self.steps_per_mm,
            *self.max_rate_mm_min,
            *self.accel_mm_s2,
        )
        return {k: float(v) for k, v in zip(self.DOLLARS, vals, strict=True)}

    @property
    def bytes_per_s(self) -> float:
        return self.baudrate / 10.0


def elapsed_at(
    checkpoints: list[tuple[int, float]] | list[list[float]],
    lines_acked: int,
    lines: int,
    total_s: float,
) -> float:
    """Model seconds at which the ``lines_acked``-th line was acknowledged, interpolated in a
    checkpoint table ``[(lines_acked, seconds), ...]`` (the job runner's ETA uses it)."""
    del lines, total_s  # the table's last entry is the last line at the total
    if lines_acked <= 0 or not checkpoints:
        return 0.0
    prev_l, prev_t = 0.0, 0.0
    for cl, ct in checkpoints:
        if cl >= lines_acked:
            span = cl - prev_l
            frac = (lines_acked - prev_l) / span if span > 0 else 1.0
            return float(prev_t + frac * (ct - prev_t))
        prev_l, prev_t = float(cl), float(ct)
    return float(prev_t)


def junction_speed_sq(
    prev_unit: tuple[float, float, float],
    unit: tuple[float, float, float],
    accel_mm_s2: tuple[float, float, float],
    deviation_mm: float,
) -> float:
    """GRBL's largest corner speed² between two moves (unit direction vectors), from the
    junction deviation ``$11``: the centripetal acceleration of a circle tangent to both moves
    whose edge passes ``deviation_mm`` from the corner, with the acceleration limited per axis
    along the junction vector (``unit - prev_unit``). A reversal gives 0, a straight join no
    limit (``math.inf``). The planner model computes the same with numpy over many blocks."""
    cos_t = -sum(a * b for a, b in zip(prev_unit, unit, strict=True))
    if cos_t > 0.999999:
        return 0.0
    if cos_t < -0.999999:
        return math.inf
    jv = [b - a for a, b in zip(prev_unit, unit, strict=True)]
    norm = math.sqrt(sum(c * c for c in jv))
    accel = math.inf
    for c, limit in zip(jv, accel_mm_s2, strict=True):
        if abs(c) > 0:
            accel = min(accel, limit * norm / abs(c))
    sin_d2 = math.sqrt(0.5 * (1.0 - cos_t))
    return max(0.0, accel * deviation_mm * sin_d2 / (1.0 - sin_d2))
