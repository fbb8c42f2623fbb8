"""Fill hatching: parallel scan lines across the closed shapes of one layer.

All shapes of a layer are hatched in one sweep: each scan line crosses every shape, so the
head moves line by line over the whole layer instead of filling shape after shape with
travel in between. Inside is decided per source element with its own fill rule (``nonzero``
counts the winding of its subpaths, ``evenodd`` their parity, as SVG does), then the inside
stretches of all elements on a line are merged. Lines are ``interval_mm`` apart at
``angle_deg``; the work is done in a frame rotated so that the lines are horizontal.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from laserd.designs.geometry import Path


def hatch_lines(
    paths: list[Path], interval_mm: float, angle_deg: float
) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Scan lines over the closed ``paths``: for each line (in sweep order) its inside
    stretches as ``(start, end)`` point pairs in mm, sorted along the line direction."""
    shapes: dict[tuple[str, str, int], list[np.ndarray]] = defaultdict(list)
    for k, p in enumerate(paths):
        if not p.closed or len(p.points) < 3:
            continue
        key = (p.source or f"#{k}", p.fill_rule, 0 if p.source else k)
        shapes[key].append(p.points)
    if not shapes:
        return []
    th = math.radians(angle_deg)
    c, s = math.cos(th), math.sin(th)
    rot = np.array([[c, s], [-s, c]])  # world → hatch frame (lines along the frame's X)
    back = rot.T
    framed = {key: [pts @ rot.T for pts in rings] for key, rings in shapes.items()}
    all_y = np.concatenate([r[:, 1] for rings in framed.values() for r in rings])
    y0 = float(all_y.min())
    n_lines = math.floor((float(all_y.max()) - y0) / interval_mm)
    # Lines sit half an interval in from the lowest edge, like a raster's pixel centres.
    ys = y0 + interval_mm * (np.arange(n_lines + 1) + 0.5)
    ys = ys[ys < float(all_y.max())]
    if ys.size == 0:
        return []
    spans: list[list[tuple[float, float]]] = [[] for _ in range(ys.size)]
    for (_src, rule, _k), rings in framed.items():
        for line, a, b in _inside_spans(rings, ys, rule):
            spans[line].append((a, b))
    out: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for line, stretch in enumerate(spans):
        if not stretch:
            continue
        merged = _merge(stretch)
        y = float(ys[line])
        row = []
        for a, b in merged:
            pa = np.array([a, y]) @ back.T
            pb = np.array([b, y]) @ back.T
            row.append((pa, pb))
        out.append(row)
    return out


def _inside_spans(
    rings: list[np.ndarray], ys: np.ndarray, rule: str
) -> list[tuple[int, float, float]]:
    """(line index, x from, x to) of the inside of one element along every scan line."""
    x0s, y0s, x1s, y1s = [], [], [], []
    for r in rings:
        nxt = np.roll(r, -1, axis=0)
        x0s.append(r[:, 0])
        y0s.append(r[:, 1])
        x1s.append(nxt[:, 0])
        y1s.append(nxt[:, 1])
    x0, y0 = np.concatenate(x0s), np.concatenate(y0s)
    x1, y1 = np.concatenate(x1s), np.concatenate(y1s)
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    if x0.size == 0:
        return []
    direction = np.where(y1 > y0, 1, -1)
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    # Half-open [ylo, yhi): a vertex shared by two edges is counted once.
    first = np.searchsorted(ys, ylo, side="left")
    last = np.searchsorted(ys, yhi, side="left")
    counts = last - first
    total = int(counts.sum())
    if total == 0:
        return []
    edge = np.repeat(np.arange(x0.size), counts)
    offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    line = first[edge] + offs
    yl = ys[line]
    t = (yl - y0[edge]) / (y1[edge] - y0[edge])
    xs = x0[edge] + t * (x1[edge] - x0[edge])
    wind = direction[edge]
    order = np.lexsort((xs, line))
    line, xs, wind = line[order], xs[order], wind[order]
    # Running winding per line: a cumulative sum reset at each line's start.
    csum = np.cumsum(wind)
    starts = np.flatnonzero(np.r_[True, line[1:] != line[:-1]])
    base = np.repeat(csum[starts] - wind[starts], np.diff(np.r_[starts, line.size]))
    after = csum - base  # winding just after each crossing
    inside = (after % 2 != 0) if rule == "evenodd" else (after != 0)
    out = []
    # A stretch runs from a crossing where inside starts to the next crossing on the line.
    for k in np.flatnonzero(inside[:-1] & (line[:-1] == line[1:])).tolist():
        a, b = float(xs[k]), float(xs[k + 1])
        if b > a:
            out.append((int(line[k]), a, b))
    return out


def _merge(stretches: list[tuple[float, float]]) -> list[tuple[float, float]]:
    stretches.sort()
    merged = [list(stretches[0])]
    for a, b in stretches[1:]:
        if a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]
