"""SVG clip paths applied to geometry, through pyclipper.

A clip region is a set of closed rings (mm) with a fill rule; nested clips (a clipped shape in
a clipped group) intersect. Clipping a shape keeps what the region shows of it:

- its **outline** (what cut and score follow) is clipped as open polylines: the parts inside
  the region remain, the region's own border is never added (the laser must not cut along an
  edge the design does not draw); an outline entirely inside stays one closed path;
- its **fill** (what fill layers hatch) is the intersection of the shape's area, with its fill
  rule, and the region, as closed rings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyclipper

from laserd.designs.cutting import CLIPPER_SCALE
from laserd.designs.geometry import FillRule

Ring = np.ndarray


@dataclass(slots=True)
class ClipRegion:
    rings: list[Ring]
    rule: FillRule = "nonzero"


def _ints(pts: np.ndarray) -> list[list[int]]:
    ints: list[list[int]] = np.rint(pts * CLIPPER_SCALE).astype(np.int64).tolist()
    return ints


def _fill_type(rule: FillRule) -> int:
    return int(pyclipper.PFT_EVENODD if rule == "evenodd" else pyclipper.PFT_NONZERO)


def intersect_regions(a: ClipRegion, b: ClipRegion) -> ClipRegion:
    """The area both regions show (nested clips)."""
    pc = pyclipper.Pyclipper()
    try:
        pc.AddPaths([_ints(r) for r in a.rings if len(r) >= 3], pyclipper.PT_SUBJECT, True)
        pc.AddPaths([_ints(r) for r in b.rings if len(r) >= 3], pyclipper.PT_CLIP, True)
        out = pc.Execute(pyclipper.CT_INTERSECTION, _fill_type(a.rule), _fill_type(b.rule))
    except pyclipper.ClipperException:
        return ClipRegion([], "nonzero")
    return ClipRegion([np.asarray(r, dtype=np.float64) / CLIPPER_SCALE for r in out], "nonzero")


def clip_outline(
    pts: np.ndarray, closed: bool, region: ClipRegion
) -> list[tuple[np.ndarray, bool]]:
    """The parts of a polyline inside ``region``: ``[(points, closed)]``."""
    rings = [r for r in region.rings if len(r) >= 3]
    if not rings or len(pts) < 2:
        return []
    line = np.vstack([pts, pts[:1]]) if closed else pts
    pc = pyclipper.Pyclipper()
    try:
        pc.AddPath(_ints(line), pyclipper.PT_SUBJECT, False)
        pc.AddPaths([_ints(r) for r in rings], pyclipper.PT_CLIP, True)
        tree = pc.Execute2(pyclipper.CT_INTERSECTION, pyclipper.PFT_NONZERO,
                           _fill_type(region.rule))  # fmt: skip
    except pyclipper.ClipperException:
        return []
    pieces = [np.asarray(p, dtype=np.float64) / CLIPPER_SCALE
              for p in pyclipper.OpenPathsFromPolyTree(tree)]  # fmt: skip
    pieces = [p for p in pieces if len(p) >= 2]
    total = float(np.hypot(*np.diff(line, axis=0).T).sum())
    kept = sum(float(np.hypot(*np.diff(p, axis=0).T).sum()) for p in pieces)
    if closed and len(pieces) == 1 and abs(kept - total) <= 1e-3:
        return [(pts, True)]  # wholly inside: still one closed path
    return [(p, False) for p in pieces]


def clip_area(rings: list[np.ndarray], rule: FillRule, region: ClipRegion) -> list[np.ndarray]:
    """The shape's area (its closed rings under ``rule``) inside ``region``, as closed rings."""
    subject = [r for r in rings if len(r) >= 3]
    clip = [r for r in region.rings if len(r) >= 3]
    if not subject or not clip:
        return []
    pc = pyclipper.Pyclipper()
    try:
        pc.AddPaths([_ints(r) for r in subject], pyclipper.PT_SUBJECT, True)
        pc.AddPaths([_ints(r) for r in clip], pyclipper.PT_CLIP, True)
        out = pc.Execute(pyclipper.CT_INTERSECTION, _fill_type(rule), _fill_type(region.rule))
    except pyclipper.ClipperException:
        return []
    return [np.asarray(r, dtype=np.float64) / CLIPPER_SCALE for r in out if len(r) >= 3]
