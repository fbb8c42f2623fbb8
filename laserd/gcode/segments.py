"""Toolpath segments as numpy arrays, and the statistics every consumer reports from them.

The analyser, the raster converter and the preview renderer all describe motion the same way:
batches of straight XY segments with their power and feed. Keeping that one representation
means the ``stats`` of a converted image and of an analysed upload are computed by the same
code, and cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class Segments:
    """A batch of straight moves in program coordinates (mm).

    ``power_s`` is the effective S value: 0 whenever the beam is off (G0, M5, or S0).
    ``rapid`` marks G0 moves; ``feed_mm_min`` is the programmed feed of the others.
    The G-code reader also gives ``z1`` (the Z target) and ``line`` (the index, within its
    chunk, of the streamed line that makes the move), which the planner model needs.
    """

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    power_s: np.ndarray
    rapid: np.ndarray
    feed_mm_min: np.ndarray
    z1: np.ndarray | None = None
    line: np.ndarray | None = None
    m3: np.ndarray | None = None  # M3 (constant power) on at the move, for the planner

    def __len__(self) -> int:
        return int(self.x0.shape[0])

    @classmethod
    def empty(cls) -> Segments:
        z = np.zeros(0, dtype=np.float64)
        b = np.zeros(0, dtype=bool)
        return cls(z, z, z, z, z, b, z, z, np.zeros(0, dtype=np.int64), b)

    @classmethod
    def from_lists(
        cls,
        x0: list[float],
        y0: list[float],
        x1: list[float],
        y1: list[float],
        power_s: list[float],
        rapid: list[bool],
        feed_mm_min: list[float],
        z1: list[float] | None = None,
        line: list[int] | None = None,
        m3: list[bool] | None = None,
    ) -> Segments:
        f = np.float64
        return cls(
            np.asarray(x0, dtype=f),
            np.asarray(y0, dtype=f),
            np.asarray(x1, dtype=f),
            np.asarray(y1, dtype=f),
            np.asarray(power_s, dtype=f),
            np.asarray(rapid, dtype=bool),
            np.asarray(feed_mm_min, dtype=f),
            None if z1 is None else np.asarray(z1, dtype=f),
            None if line is None else np.asarray(line, dtype=np.int64),
            None if m3 is None else np.asarray(m3, dtype=bool),
        )


@dataclass(slots=True)
class MotionStats:
    """Accumulates bounds, distances and a time estimate over batches of segments.

    Bounds cover every commanded end point and the start of every burning move; the start of
    the very first move is the machine's position before the job, which the file does not know,
    so it only counts when the laser burns from there. The time estimate is distance over feed
    (G0 at ``rapid_mm_min``) plus dwells: it ignores acceleration, which is small for raster
    work where GRBL's planner carries speed through collinear segments.
    """

    rapid_mm_min: float = 5000.0
    lines: int = 0
    xmin: float = math.inf
    xmax: float = -math.inf
    ymin: float = math.inf
    ymax: float = -math.inf
    laser_on_mm: float = 0.0
    travel_mm: float = 0.0
    estimated_s: float = 0.0
    max_power_s: float = 0.0
    moves: int = 0
    # Extent of the burning moves alone (what framing the material needs).
    lxmin: float = math.inf
    lxmax: float = -math.inf
    lymin: float = math.inf
    lymax: float = -math.inf
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, seg: Segments) -> None:
        n = len(seg)
        if n == 0:
            return
        self.moves += n
        length = np.hypot(seg.x1 - seg.x0, seg.y1 - seg.y0)
        burning = seg.power_s > 0
        self.laser_on_mm += float(length[burning].sum())
        self.travel_mm += float(length[~burning].sum())
        feed = np.where(seg.rapid, self.rapid_mm_min, seg.feed_mm_min)
        self.estimated_s += float((length / feed).sum()) * 60.0
        self._extend(seg.x1, seg.y1)
        if burning.any():
            bx = np.concatenate((seg.x0[burning], seg.x1[burning]))
            by = np.concatenate((seg.y0[burning], seg.y1[burning]))
            self._extend(bx, by)
            self.extend_laser(float(bx.min()), float(bx.max()), float(by.min()), float(by.max()))
            self.max_power_s = max(self.max_power_s, float(seg.power_s.max()))

    def extend_laser(self, xmin: float, xmax: float, ymin: float, ymax: float) -> None:
        self.lxmin, self.lxmax = min(self.lxmin, xmin), max(self.lxmax, xmax)
        self.lymin, self.lymax = min(self.lymin, ymin), max(self.lymax, ymax)

    def add_time(self, seconds: float) -> None:
        self.estimated_s += seconds

    def _extend(self, xs: np.ndarray, ys: np.ndarray) -> None:
        if xs.size == 0:
            return
        self.xmin = min(self.xmin, float(xs.min()))
        self.xmax = max(self.xmax, float(xs.max()))
        self.ymin = min(self.ymin, float(ys.min()))
        self.ymax = max(self.ymax, float(ys.max()))

    @property
    def has_bounds(self) -> bool:
        return self.xmin <= self.xmax

    def bounds(self) -> dict[str, float]:
        if not self.has_bounds:
            return {"xmin": 0.0, "xmax": 0.0, "ymin": 0.0, "ymax": 0.0}
        return {
            "xmin": round(self.xmin, 4),
            "xmax": round(self.xmax, 4),
            "ymin": round(self.ymin, 4),
            "ymax": round(self.ymax, 4),
        }

    def laser_bounds(self) -> dict[str, float] | None:
        if self.lxmin > self.lxmax:
            return None
        return {
            "xmin": round(self.lxmin, 4),
            "xmax": round(self.lxmax, 4),
            "ymin": round(self.lymin, 4),
            "ymax": round(self.lymax, 4),
        }

    def as_dict(self) -> dict[str, Any]:
        """The ``stats`` object of API.md, plus ``travel_mm`` and ``laser_bounds`` (the extent
        of the burning moves alone, without travel and overscan: what framing needs)."""
        return {
            "lines": self.lines,
            "bounds": self.bounds(),
            "laser_bounds": self.laser_bounds(),
            "estimated_s": round(self.estimated_s, 2),
            "laser_on_mm": round(self.laser_on_mm, 3),
            "travel_mm": round(self.travel_mm, 3),
        }

    def bed_warnings(self, bed_mm: tuple[float, float]) -> list[str]:
        """Say where the toolpath leaves the bed (0..bed in work coordinates)."""
        if not self.has_bounds:
            return []
        bx, by = bed_mm
        eps = 1e-6
        out = []
        if self.xmin < -eps or self.xmax > bx + eps:
            out.append(
                f"the job leaves the bed in X: it spans {self.xmin:.2f} to {self.xmax:.2f} mm, "
                f"the bed 0 to {bx:g} mm"
            )
        if self.ymin < -eps or self.ymax > by + eps:
            out.append(
                f"the job leaves the bed in Y: it spans {self.ymin:.2f} to {self.ymax:.2f} mm, "
                f"the bed 0 to {by:g} mm"
            )
        return out

    def power_warnings(self, max_power_s: int) -> list[str]:
        if self.max_power_s > max_power_s:
            return [
                f"S values up to {self.max_power_s:g} exceed the controller's maximum "
                f"($30 = {max_power_s}); GRBL clamps them to full power"
            ]
        return []
