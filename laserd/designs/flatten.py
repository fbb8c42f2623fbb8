"""Curves to polylines within a tolerance, and polyline simplification.

The burned path may stray from the true curve by at most the design tolerance. Half of it is
spent on flattening (each curve is cut into enough chords that no chord is further than
``tol/2`` from the curve) and half on :func:`simplify`, which then merges nearly collinear
points (any dropped point is within ``tol/2`` of the chord that replaces it), so GRBL gets
fewer, longer blocks without the error adding up past ``tol``.
"""

from __future__ import annotations

import math

import numpy as np

#: Default tolerance in mm: well under a diode laser's spot (≈ 0.1 mm).
DEFAULT_TOLERANCE_MM = 0.02
#: No curve is cut into more chords than this (a giant arc at a tiny tolerance).
MAX_CHORDS = 4096


def chords_for_cubic(p: np.ndarray, tol: float) -> int:
    """Chords needed so that a cubic Bézier (4×2 control points) stays within ``tol``.

    A chord of a parameter interval ``h`` deviates at most ``h²/8 · max|B''|``, and
    ``|B''| ≤ 6·max(|P0 − 2P1 + P2|, |P1 − 2P2 + P3|)``.
    """
    d = max(
        float(np.hypot(*(p[0] - 2 * p[1] + p[2]))), float(np.hypot(*(p[1] - 2 * p[2] + p[3])))
    )
    return _chords(6.0 * d, tol)


def chords_for_quadratic(p: np.ndarray, tol: float) -> int:
    """As :func:`chords_for_cubic` for a quadratic (``B'' = 2(P0 − 2P1 + P2)``)."""
    return _chords(2.0 * float(np.hypot(*(p[0] - 2 * p[1] + p[2]))), tol)


def _chords(second_derivative: float, tol: float) -> int:
    if second_derivative <= 0:
        return 1
    return int(min(MAX_CHORDS, max(1, math.ceil(math.sqrt(second_derivative / (8.0 * tol))))))


def chords_for_arc(radius: float, sweep_rad: float, tol: float) -> int:
    """Chords for an arc of ``radius`` (the larger one of an ellipse) and ``sweep_rad``.

    A chord spanning the angle ``θ`` has the sagitta ``r(1 − cos(θ/2))``.
    """
    if radius <= tol or sweep_rad == 0:
        return 1
    step = 2.0 * math.acos(max(-1.0, 1.0 - tol / radius))
    return int(min(MAX_CHORDS, max(1, math.ceil(abs(sweep_rad) / step))))


#: Below this many points plain Python beats numpy's per-call overhead.
SMALL_RDP = 64


def _rdp_small(pts: list[list[float]], tol: float) -> list[int]:
    """Indices kept by Ramer–Douglas–Peucker, in plain Python (for short polylines)."""
    keep = [0, len(pts) - 1]
    stack = [(0, len(pts) - 1)]
    tol2 = tol * tol
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        ax, ay = pts[i]
        bx, by = pts[j]
        dx, dy = bx - ax, by - ay
        den = dx * dx + dy * dy
        best, best_k = -1.0, -1
        for k in range(i + 1, j):
            px, py = pts[k]
            if den == 0.0:
                ex, ey = px - ax, py - ay
            else:
                t = ((px - ax) * dx + (py - ay) * dy) / den
                t = 0.0 if t < 0.0 else 1.0 if t > 1.0 else t
                ex, ey = px - ax - t * dx, py - ay - t * dy
            d2 = ex * ex + ey * ey
            if d2 > best:
                best, best_k = d2, k
        if best > tol2:
            keep.append(best_k)
            stack.append((i, best_k))
            stack.append((best_k, j))
    keep.sort()
    return keep


def _seg_distance(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point to the segment a–b."""
    ab = b - a
    den = float(ab @ ab)
    if den == 0.0:
        proj = a
    else:
        t = np.clip(((pts - a) @ ab) / den, 0.0, 1.0)
        proj = a + t[:, None] * ab
    dist: np.ndarray = np.hypot(*(pts - proj).T)
    return dist


def simplify(points: np.ndarray, tol: float, closed: bool = False) -> np.ndarray:
    """Drop points within ``tol`` of the chord that replaces them (Ramer–Douglas–Peucker).

    Exact duplicates always go. A closed path is split at its point farthest from the first
    one, so both halves keep their ends.
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) > 1:
        step = np.any(np.diff(pts, axis=0) != 0, axis=1)
        pts = pts[np.concatenate(([True], step))]
        if closed and len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
            pts = pts[:-1]
    if len(pts) <= 2 or tol <= 0:
        return pts
    if closed:
        far = int(np.argmax(np.hypot(*(pts - pts[0]).T)))
        if far == 0:
            return pts[:1]
        first = _rdp(pts[: far + 1], tol)
        ring = np.vstack([pts[far:], pts[:1]])
        second = _rdp(ring, tol)
        return np.vstack([first, second[1:-1]])
    return _rdp(pts, tol)


def _rdp(pts: np.ndarray, tol: float) -> np.ndarray:
    n = len(pts)
    if n <= 2:
        return pts
    if n <= SMALL_RDP:
        return pts[_rdp_small(pts.tolist(), tol)]
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        d = _seg_distance(pts[i + 1 : j], pts[i], pts[j])
        k = int(np.argmax(d))
        if d[k] > tol:
            m = i + 1 + k
            keep[m] = True
            stack.append((i, m))
            stack.append((m, j))
    return pts[keep]
