"""Placement: one affine transform from design coordinates to the bed, and the bed check."""

from __future__ import annotations

import math

import numpy as np

from laserd.designs.errors import DesignError
from laserd.designs.geometry import Design, affine
from laserd.schemas.designs import Operation, Placement

#: Geometry may touch the bed's edge within this (rounding of the document's numbers).
EDGE_EPS_MM = 1e-3


def placement_matrix(
    box: tuple[float, float, float, float], placement: Placement
) -> np.ndarray:
    """The 3×3 transform that applies ``placement`` to a design whose box is ``box``.

    ``box`` is ``(xmin, ymin, xmax, ymax)`` of the geometry. Scale (aspect kept when one side
    is given), mirror and rotation happen about the box's centre; then the rotated box's
    lower-left corner goes to (``x_mm``, ``y_mm``); an axis without its coordinate keeps the
    document's position.
    """
    xmin, ymin, xmax, ymax = box
    w, h = xmax - xmin, ymax - ymin
    sx = sy = 1.0
    if placement.width_mm is not None and placement.height_mm is not None:
        sx = placement.width_mm / w if w > 0 else 1.0
        sy = placement.height_mm / h if h > 0 else 1.0
    elif placement.width_mm is not None:
        sx = sy = placement.width_mm / w if w > 0 else 1.0
    elif placement.height_mm is not None:
        sx = sy = placement.height_mm / h if h > 0 else 1.0
    if w <= 0 and h > 0:
        sx = sy
    if h <= 0 and w > 0:
        sy = sx
    cx, cy = (xmin + xmax) / 2.0, (ymin + ymax) / 2.0
    m = affine(e=-cx, f=-cy)
    m = affine(a=-sx if placement.mirror_x else sx, d=sy) @ m
    th = math.radians(placement.rotation_deg)
    c, s = math.cos(th), math.sin(th)
    m = affine(c, s, -s, c) @ m
    corners = np.array([[xmin, ymin, 1], [xmax, ymin, 1], [xmax, ymax, 1], [xmin, ymax, 1]])
    placed = corners @ m.T
    lo = placed[:, :2].min(axis=0)
    tx = placement.x_mm if placement.x_mm is not None else xmin
    ty = placement.y_mm if placement.y_mm is not None else ymin
    matrix: np.ndarray = affine(e=tx - lo[0], f=ty - lo[1]) @ m
    return matrix


def placed_box(
    box: tuple[float, float, float, float], placement: Placement | None
) -> tuple[float, float, float, float]:
    """The bounds of the design's box after ``placement``: what ``x_mm``/``y_mm`` place
    (its lower-left corner) and what the UI's bed view drags."""
    if placement is None:
        return box
    m = placement_matrix(box, placement)
    xmin, ymin, xmax, ymax = box
    corners = np.array([[xmin, ymin, 1], [xmax, ymin, 1], [xmax, ymax, 1], [xmin, ymax, 1]])
    placed = (corners @ m.T)[:, :2]
    lo, hi = placed.min(axis=0), placed.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def place(design: Design, placement: Placement | None) -> Design:
    """The design moved onto the bed (a copy); the document position without a placement."""
    box = design.bounds()
    if box is None or placement is None:
        return design
    return design.transformed(placement_matrix(box, placement))


def check_on_bed(design: Design, bed_mm: tuple[float, float]) -> None:
    """Refuse, with the numbers, a placed design whose burning geometry leaves the bed."""
    burning = {lay.id for lay in design.layers if lay.operation is not Operation.off}
    box = design.bounds(burning)
    if box is None:
        return
    xmin, ymin, xmax, ymax = box
    bx, by = bed_mm
    e = EDGE_EPS_MM
    if xmin < -e or ymin < -e or xmax > bx + e or ymax > by + e:
        raise DesignError(
            f"the placed design spans X {xmin:.2f} to {xmax:.2f} mm and Y {ymin:.2f} to "
            f"{ymax:.2f} mm ({xmax - xmin:.2f} × {ymax - ymin:.2f} mm); the bed is 0 to "
            f"{bx:g} mm in X and 0 to {by:g} mm in Y: move or scale it",
            code="off_bed",
            details={"bounds": {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax},
                     "bed_mm": {"x": bx, "y": by}},
        )  # fmt: skip
