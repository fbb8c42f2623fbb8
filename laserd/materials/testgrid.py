"""The material test grid: power × speed cells that find the right settings for a material.

A pure function (:func:`build_test_grid`) of the request: power rises along X (columns, left
to right), speed along Y (rows, bottom to top). Every cell is a square with its own layer, so
each burns at its own power and speed through the normal design pipeline (fill: hatched,
score: traced, cut: cut out), and under each cell a label gives its values in single-stroke
Hershey text (:mod:`laserd.materials.hershey`) on one score layer of its own: the power on the
first line, the speed in mm/min on the second. Geometry starts at (0, 0); the design's
placement moves it on the bed like any design.

The answer's ``cells`` list ``{row, col, power_pct, speed_mm_min}`` and the layer that burns
each, so the maker who picks the best cell gets its exact values back.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from laserd.designs.geometry import Design
from laserd.designs.geometry import Path as DesignPath
from laserd.materials.hershey import text_strokes, text_width
from laserd.schemas.designs import FillSettings, LayerSettings, Operation, Placement

MAX_STEPS = 20
LABEL_COLOR = "#000000"
#: Labels: cap height bounds and the space between label lines (a share of the height).
LABEL_MIN_MM, LABEL_MAX_MM = 1.0, 3.0
LINE_GAP = 0.5


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Strict):
    min: float
    max: float
    steps: int = Field(ge=1, le=MAX_STEPS)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        if self.steps == 1 and self.min != self.max:
            raise ValueError("one step needs min equal to max")
        return self

    def values(self, decimals: int) -> list[float]:
        return [round(float(v), decimals) for v in np.linspace(self.min, self.max, self.steps)]


class PowerRange(Range):
    min: float = Field(ge=0, le=100)
    max: float = Field(ge=0, le=100)


class SpeedRange(Range):
    min: float = Field(gt=0, le=100_000)
    max: float = Field(gt=0, le=100_000)


class TestGridRequest(_Strict):
    """``POST /projects/{id}/test-grid`` (API.md, "Materials")."""

    __test__: ClassVar[bool] = False  # a model, not a pytest test class

    operation: Literal["fill", "score", "cut"] = Field(description="what every cell does")
    power_pct: PowerRange
    speed_mm_min: SpeedRange
    cell_mm: float = Field(10.0, ge=2, le=100, description="side of each square cell")
    gap_mm: float = Field(3.0, ge=0.5, le=50, description="space between cells")
    labels: bool = Field(True, description="engrave each cell's values under it")
    passes: int = Field(1, ge=1, le=50)
    air_assist: bool | None = Field(None, description="default: on for cut, off otherwise")
    fill: FillSettings = Field(default_factory=FillSettings, description="fill cells' hatching")
    label_power_pct: float | None = Field(
        None, ge=0, le=100, description="labels' power; default: the grid's lowest"
    )
    label_speed_mm_min: float | None = Field(
        None, gt=0, le=100_000, description="labels' speed; default: the grid's highest"
    )
    placement: Placement | None = None


@dataclass(slots=True)
class TestGrid:
    __test__: ClassVar[bool] = False  # not a pytest test class

    design: Design
    cells: list[dict[str, Any]] = field(default_factory=list)
    width_mm: float = 0.0
    height_mm: float = 0.0


def cell_color(index: int, count: int, taken: set[str] | None = None) -> str:
    """A colour per cell (hue around the wheel), so the preview tells them apart; with
    ``taken``, never one already used (a design file groups its layers by colour)."""
    r, g, b = colorsys.hsv_to_rgb((index / max(count, 1)) * 0.85, 0.85, 0.9)
    rgb = [round(r * 255), round(g * 255), round(b * 255)]
    color = "#{:02x}{:02x}{:02x}".format(*rgb)
    while taken is not None and (color in taken or color == LABEL_COLOR):
        rgb[2] = (rgb[2] + 1) % 256
        color = "#{:02x}{:02x}{:02x}".format(*rgb)
    if taken is not None:
        taken.add(color)
    return color


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def label_lines(power_pct: float, speed_mm_min: float) -> tuple[str, str]:
    return f"{_fmt(power_pct)}%", _fmt(speed_mm_min)


def _label_height(cell_mm: float, texts: list[str]) -> float:
    """The largest cap height (within bounds) at which every label line fits a cell's width."""
    widest = max(text_width(t, 1.0) for t in texts)
    return max(LABEL_MIN_MM, min(LABEL_MAX_MM, cell_mm * 0.95 / widest, cell_mm / 4))


def _square(x: float, y: float, side: float) -> np.ndarray:
    return np.array([[x, y], [x + side, y], [x + side, y + side], [x, y + side]], dtype=float)


def _label_layer(
    req: TestGridRequest, layer_id: int, powers: list[float], speeds: list[float]
) -> LayerSettings:
    """The labels' score layer: burned first (order -1), by default at the grid's fastest
    speed and lowest power, so the labels stay faint beside the cells."""
    return LayerSettings(
        id=layer_id,
        color=LABEL_COLOR,
        name="labels",
        operation=Operation.score,
        speed_mm_min=req.label_speed_mm_min or max(speeds),
        power_pct=req.label_power_pct if req.label_power_pct is not None else min(powers),
        order=-1,
    )


def build_test_grid(req: TestGridRequest) -> TestGrid:
    powers = req.power_pct.values(1)
    speeds = req.speed_mm_min.values(0)
    n = len(powers) * len(speeds)
    label_texts = [t for p in powers for s in speeds for t in label_lines(p, s)]
    h = _label_height(req.cell_mm, label_texts) if req.labels else 0.0
    band = h * (2 + 2 * LINE_GAP) if req.labels else 0.0
    pitch_x = req.cell_mm + req.gap_mm
    pitch_y = req.cell_mm + band + req.gap_mm
    operation = Operation(req.operation)
    air = req.air_assist if req.air_assist is not None else operation is Operation.cut
    paths: list[DesignPath] = []
    layers: list[LayerSettings] = []
    cells: list[dict[str, Any]] = []
    labels: list[np.ndarray] = []
    taken: set[str] = set()
    for row, speed in enumerate(speeds):
        for col, power in enumerate(powers):
            layer_id = len(layers) + 1
            x, y0 = col * pitch_x, row * pitch_y
            y = y0 + band
            layers.append(
                LayerSettings(
                    id=layer_id,
                    color=cell_color(layer_id - 1, n, taken),
                    name=f"{_fmt(power)}% {_fmt(speed)} mm/min",
                    operation=operation,
                    speed_mm_min=speed,
                    power_pct=power,
                    passes=req.passes,
                    air_assist=air,
                    fill=req.fill,
                )
            )
            paths.append(
                DesignPath(
                    _square(x, y, req.cell_mm),
                    closed=True,
                    layer=layer_id,
                    source=f"cell r{row}c{col}",
                )
            )
            cells.append(
                {"row": row, "col": col, "power_pct": power, "speed_mm_min": speed,
                 "layer_id": layer_id, "x_mm": x, "y_mm": y, "size_mm": req.cell_mm}
            )  # fmt: skip
            if req.labels:
                top, bottom = label_lines(power, speed)
                labels += text_strokes(top, h, x, y0 + h * (1 + LINE_GAP))
                labels += text_strokes(bottom, h, x, y0)
    if labels:
        label_layer = _label_layer(req, len(layers) + 1, powers, speeds)
        layers.append(label_layer)
        paths += [DesignPath(s, closed=False, layer=label_layer.id, source="label") for s in labels]
    width = len(powers) * pitch_x - req.gap_mm
    height = len(speeds) * pitch_y - req.gap_mm
    design = Design(paths=paths, layers=layers, width_mm=width, height_mm=height)
    return TestGrid(design=design, cells=cells, width_mm=width, height_mm=height)


def grid_design_file(
    req: TestGridRequest, *, bed_mm: tuple[float, float]
) -> tuple[bytes, TestGrid]:
    """The grid as an SVG design file and the grid itself, placed and checked against the bed
    first (worker thread): :class:`laserd.designs.DesignError` (422 ``off_bed``) refuses it
    before anything is stored.

    The file's layers, read back by :mod:`laserd.designs`, have the grid's own ids (cells 1..n
    in order, labels n + 1), so ``[layer.model_dump() for layer in grid.design.layers]`` are
    its layer settings as they are.
    """
    from laserd.designs.placement import check_on_bed, place

    grid = build_test_grid(req)
    check_on_bed(place(grid.design, req.placement), bed_mm)
    return grid_svg(grid), grid


def grid_svg(grid: TestGrid) -> bytes:
    """The grid as an SVG document in millimetres: one colour per cell (filled squares for a
    fill grid, outlines otherwise) and the labels as black hairline strokes.

    Read back by :mod:`laserd.designs` (or opened in LightBurn or Inkscape) it gives one layer
    per cell colour, so each cell's settings can be set on its layer.
    """
    w, h = grid.width_mm, grid.height_mm
    design = grid.design
    op = {lay.id: lay for lay in design.layers}
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.4f}mm" height="{h:.4f}mm"'
        f' viewBox="0 0 {w:.4f} {h:.4f}">',
    ]
    for path in design.paths:
        layer = op[path.layer]
        pts = " ".join(f"{x:.4f},{h - y:.4f}" for x, y in path.points)
        if path.closed and layer.operation is Operation.fill:
            out.append(f'<polygon points="{pts}" fill="{layer.color}" stroke="none"/>')
        elif path.closed:
            out.append(
                f'<polygon points="{pts}" fill="none" stroke="{layer.color}" stroke-width="0.1"/>'
            )
        else:
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{layer.color}" stroke-width="0.1"/>'
            )
    out.append("</svg>")
    return ("\n".join(out) + "\n").encode("utf-8")
