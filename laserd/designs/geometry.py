"""The plain data passed between the design stages.

A :class:`Design` is what a parser (SVG, DXF, or code such as the material test grid) hands
to the planner: polylines in millimetres, one ``(N, 2)`` float64 array per path, in design
coordinates (X to the right, Y up, as on the bed), each tagged with its layer's id; embedded
raster images with the affine map from their pixels to millimetres; the layer settings; and
the warnings collected while reading. Nothing here knows about files or G-code.

Building a design in code::

    from laserd.designs import Design, Path
    from laserd.schemas.designs import Operation, layer_defaults

    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], dtype=float)
    design = Design(
        paths=[Path(square, closed=True, layer=1)],
        layers=[layer_defaults(1, Operation.cut, color="#ff0000")],
    )
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image

from laserd.schemas.designs import LayerSettings

FillRule = Literal["nonzero", "evenodd"]


@dataclass(slots=True)
class Path:
    """One polyline. ``closed`` paths do not repeat their first point at the end."""

    points: np.ndarray  # (N, 2) float64, mm
    closed: bool
    layer: int
    fill_rule: FillRule = "nonzero"
    #: Identifies the source element in messages ("path#outline", "LWPOLYLINE on CUT").
    source: str = ""

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
        if self.closed and len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
            pts = pts[:-1]
        self.points = pts

    def length(self) -> float:
        pts = self.points
        if len(pts) < 2:
            return 0.0
        total = float(np.hypot(*np.diff(pts, axis=0).T).sum())
        if self.closed:
            total += float(np.hypot(*(pts[0] - pts[-1])))
        return total

    def ring(self) -> np.ndarray:
        """The points as drawn: a closed path with its first point repeated at the end."""
        return np.vstack([self.points, self.points[:1]]) if self.closed else self.points


@dataclass(slots=True)
class ImageItem:
    """An embedded raster image: ``matrix`` (3×3) maps pixel (column, row) to mm, Y up.

    Pixel (0, 0) is the top-left corner of the top-left pixel; (width, height) the opposite
    corner. The image is decoded and bounded in size by the parser.
    """

    image: Image.Image
    matrix: np.ndarray
    layer: int
    source: str = ""

    def corners(self) -> np.ndarray:
        w, h = self.image.size
        px = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=np.float64)
        placed: np.ndarray = (px @ self.matrix.T)[:, :2]
        return placed


@dataclass(slots=True)
class Design:
    """A parsed design: geometry, layers and what the parser had to say about the file."""

    paths: list[Path] = field(default_factory=list)
    layers: list[LayerSettings] = field(default_factory=list)
    images: list[ImageItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The page (SVG viewport) or drawing extent in mm; its lower-left corner is (0, 0).
    width_mm: float = 0.0
    height_mm: float = 0.0

    def layer(self, layer_id: int) -> LayerSettings:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(layer_id)

    def bounds(self, layer_ids: set[int] | None = None) -> tuple[float, float, float, float] | None:
        """``(xmin, ymin, xmax, ymax)`` of the geometry (of some layers), or None if empty."""
        chunks = [p.points for p in self.paths if layer_ids is None or p.layer in layer_ids]
        chunks += [i.corners() for i in self.images if layer_ids is None or i.layer in layer_ids]
        chunks = [c for c in chunks if len(c)]
        if not chunks:
            return None
        allp = np.vstack(chunks)
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    def transformed(self, matrix: np.ndarray) -> Design:
        """A copy with every point mapped through the 3×3 affine ``matrix``."""
        a = matrix[:2, :2].T
        t = matrix[:2, 2]
        paths = [
            Path(p.points @ a + t, p.closed, p.layer, p.fill_rule, p.source) for p in self.paths
        ]
        images = [ImageItem(i.image, matrix @ i.matrix, i.layer, i.source) for i in self.images]
        return Design(
            paths, list(self.layers), images, list(self.warnings), self.width_mm, self.height_mm
        )


def affine(
    a: float = 1.0, b: float = 0.0, c: float = 0.0, d: float = 1.0, e: float = 0.0, f: float = 0.0
) -> np.ndarray:
    """The 3×3 matrix of SVG's ``matrix(a b c d e f)``: x' = a·x + c·y + e, y' = b·x + d·y + f."""
    return np.array([[a, c, e], [b, d, f], [0.0, 0.0, 1.0]], dtype=np.float64)
