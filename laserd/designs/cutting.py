"""Cut geometry: which cut lies inside which (the inside-first rule), kerf offset and tabs.

Nesting decides two things: the order (a path inside a closed cut is cut before it, so a
part never drops or shifts before its holes are cut) and the kerf direction (a closed path
at even depth is an outer contour and grows by half the kerf; one at odd depth is a hole and
shrinks by it), so the parts come out at their drawn size.
"""

from __future__ import annotations

import numpy as np
import pyclipper

#: pyclipper works in integers: 1 unit = 0.1 µm.
CLIPPER_SCALE = 10_000.0


def signed_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    # Shoelace formula, the closing edge (last → first) added apart (cheaper than np.roll).
    inner = float(np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:]))
    return 0.5 * (inner + float(x[-1] * y[0] - y[-1] * x[0]))


def points_in_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd ray test of points (P×2) against a closed ring (no repeated first point)."""
    x0, y0 = poly[:, 0], poly[:, 1]
    x1 = np.concatenate((x0[1:], x0[:1]))
    y1 = np.concatenate((y0[1:], y0[:1]))
    px, py = pts[:, 0:1], pts[:, 1:2]
    crosses = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    inside: np.ndarray = np.count_nonzero(crosses & (px < xs), axis=1) % 2 == 1
    return inside


def containers(rings: list[np.ndarray], closed: list[bool]) -> list[list[int]]:
    """For each path, the indices of the closed paths that contain it (its ancestors).

    A path is inside a closed path when its bounding box is within the other's, the other
    encloses a larger area, and most of (up to 16 of) its points lie inside it, so a path
    that touches the other's outline somewhere still counts.
    """
    n = len(rings)
    if n == 0:
        return []
    lo = np.array([r.min(axis=0) for r in rings])
    hi = np.array([r.max(axis=0) for r in rings])
    area = np.array([abs(signed_area(r)) if c and len(r) >= 3 else 0.0
                     for r, c in zip(rings, closed, strict=True)])  # fmt: skip
    cand_idx = np.flatnonzero(np.array(closed, dtype=bool) & (area > 0))
    out: list[list[int]] = [[] for _ in range(n)]
    if cand_idx.size == 0:
        return out
    # Candidates sorted by their left edge: only those starting left of a path can hold it.
    cand_idx = cand_idx[np.argsort(lo[cand_idx, 0], kind="stable")]
    clo, chi, carea = lo[cand_idx], hi[cand_idx], area[cand_idx]
    left = clo[:, 0]
    eps = 1e-9
    for i in range(n):
        m = int(np.searchsorted(left, lo[i, 0] + eps, side="right"))
        if m == 0:
            continue
        ok = (
            (clo[:m, 1] <= lo[i, 1] + eps)
            & (chi[:m, 0] >= hi[i, 0] - eps) & (chi[:m, 1] >= hi[i, 1] - eps)
            & (carea[:m] > area[i])
        )  # fmt: skip
        hits = cand_idx[:m][ok]
        if hits.size == 0:
            continue
        inner = rings[i]
        sample = inner if len(inner) <= 16 else inner[:: max(1, len(inner) // 16)]
        for j in hits.tolist():
            if j != i and points_in_polygon(sample, rings[j]).sum() * 2 > len(sample):
                out[i].append(j)
    return out


def offset_closed(pts: np.ndarray, delta: float, tol: float) -> list[np.ndarray]:
    """``pts`` (a closed ring) grown by ``delta`` mm (shrunk when negative), round corners.

    Returns the resulting rings (none when a hole is smaller than the kerf; several when a
    narrow waist splits the shape).
    """
    if delta == 0:
        return [pts]
    ring = np.asarray(pts, dtype=np.float64)
    if signed_area(ring) < 0:
        ring = ring[::-1]
    po = pyclipper.PyclipperOffset()
    po.ArcTolerance = max(1.0, tol * CLIPPER_SCALE)
    po.AddPath(
        np.rint(ring * CLIPPER_SCALE).astype(np.int64).tolist(),
        pyclipper.JT_ROUND,
        pyclipper.ET_CLOSEDPOLYGON,
    )
    result = po.Execute(delta * CLIPPER_SCALE)
    return [np.asarray(r, dtype=np.float64) / CLIPPER_SCALE for r in result if len(r) >= 3]


def apply_tabs(ring: np.ndarray, count: int, width_mm: float) -> list[np.ndarray] | None:
    """Split a closed ring, starting at its first point, into ``count`` open pieces with
    ``width_mm`` gaps centred at equal spacing; None when the path is too short for them
    (each tab needs at least its width of cut on both sides)."""
    closed = np.vstack([ring, ring[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    total = float(seg.sum())
    if count <= 0 or total < count * width_mm * 3:
        return None
    cum = np.concatenate(([0.0], np.cumsum(seg)))
    spacing = total / count
    # Tabs centred at spacing·(k + ½): the start point lies in the middle of a cut stretch.
    pieces = []
    for k in range(count + 1):
        start = 0.0 if k == 0 else spacing * (k - 0.5) + width_mm / 2.0
        end = total if k == count else spacing * (k + 0.5) - width_mm / 2.0
        if end > start:
            pieces.append((start, end))
    return [_sub_polyline(closed, cum, a, b) for a, b in pieces]


def _sub_polyline(pts: np.ndarray, cum: np.ndarray, a: float, b: float) -> np.ndarray:
    """The part of the polyline ``pts`` between arc lengths ``a`` and ``b``."""
    def at(s: float) -> np.ndarray:
        i = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(pts) - 2))
        span = cum[i + 1] - cum[i]
        t = 0.0 if span <= 0 else (s - cum[i]) / span
        point: np.ndarray = pts[i] + (pts[i + 1] - pts[i]) * min(1.0, max(0.0, t))
        return point

    inner = (cum > a) & (cum < b)
    return np.vstack([at(a), pts[inner], at(b)])

