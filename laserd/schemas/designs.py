"""Layers and placement of a design file (API.md, "Designs: SVG and DXF files").

One pydantic model per shape is the request validation, the OpenAPI source and what the
design pipeline (:mod:`laserd.designs`) reads, so a value the API accepted is a value the
planner can use. Code that builds a design without a file (the material test grid) makes
:class:`LayerSettings` directly: every field has a default suited to its operation through
:func:`layer_defaults`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_COLOR = re.compile(r"^#[0-9a-f]{6}$")


class Operation(StrEnum):
    """What the laser does with a layer's paths.

    ``cut`` follows closed and open paths at cutting power (kerf, tabs, inside-first);
    ``score`` follows them at marking power; ``fill`` hatches the inside of closed shapes;
    ``image`` engraves embedded raster images through the raster pipeline; ``off`` skips.
    """

    cut = "cut"
    score = "score"
    fill = "fill"
    image = "image"
    off = "off"


#: Job order of the operations (lower first): engrave before marking, marking before cutting,
#: so the material has not moved or dropped out when the lighter work is done.
OPERATION_RANK = {
    Operation.fill: 0,
    Operation.image: 0,
    Operation.score: 1,
    Operation.cut: 2,
    Operation.off: 3,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TabSettings(_Strict):
    """Uncut bridges left on each closed cut, evenly spaced, that hold the part in the sheet."""

    count: int = Field(0, ge=0, le=64, description="bridges per closed cut path (0: none)")
    width_mm: float = Field(1.0, gt=0, le=50, description="length of each bridge along the path")


class FillSettings(_Strict):
    """Hatching of closed shapes (fill layers) and the raster grid of image layers."""

    interval_mm: float = Field(
        0.1, ge=0.01, le=10, description="distance between hatch lines (image: pixel size)"
    )
    angle_deg: float = Field(0.0, ge=-360, le=360, description="hatch direction, 0 = along X")
    crosshatch: bool = Field(False, description="a second hatch at angle + 90°")
    bidirectional: bool = Field(True, description="alternate the direction of hatch lines")
    overscan_mm: float = Field(
        2.0, ge=0, le=50, description="laser-off run-in and run-out, kept on the bed"
    )


class LayerSettings(_Strict):
    """One layer of a design: the paths of one stroke or fill colour (DXF: one layer name)."""

    id: int = Field(ge=1, le=100_000, description="stable within the file")
    color: str = Field("#000000", description="#rrggbb, the colour the design gave the layer")
    name: str = Field("", max_length=200)
    operation: Operation = Operation.cut
    speed_mm_min: float = Field(300.0, gt=0, le=100_000)
    power_pct: float = Field(100.0, ge=0, le=100, description="100 % is the controller's $30")
    passes: int = Field(1, ge=1, le=50)
    air_assist: bool = Field(False, description="M8 while this layer runs, M9 after")
    order: int = Field(0, ge=-1000, le=1000, description="lower runs first within its operation")
    kerf_mm: float = Field(0.0, ge=0, le=5, description="cut width; cut paths offset by half")
    tabs: TabSettings = Field(default_factory=TabSettings)
    fill: FillSettings = Field(default_factory=FillSettings)
    material_id: int | None = Field(None, ge=1, description="the material these came from")

    @field_validator("color", mode="before")
    @classmethod
    def _lower_color(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator("color")
    @classmethod
    def _check_color(cls, v: str) -> str:
        if not _COLOR.match(v):
            raise ValueError("color must be #rrggbb")
        return v


#: Settings a new layer starts with, per operation: conservative values for a 5–10 W diode
#: laser on 3 mm plywood; the user (or a material) changes them per file.
_DEFAULTS: dict[Operation, dict[str, Any]] = {
    Operation.cut: {"speed_mm_min": 300.0, "power_pct": 100.0, "air_assist": True},
    Operation.score: {"speed_mm_min": 1500.0, "power_pct": 40.0},
    Operation.fill: {"speed_mm_min": 3000.0, "power_pct": 50.0},
    Operation.image: {"speed_mm_min": 3000.0, "power_pct": 80.0},
    Operation.off: {},
}


def layer_defaults(
    layer_id: int, operation: Operation, *, color: str = "#000000", name: str = "", order: int = 0
) -> LayerSettings:
    """A layer with the default speed, power and air assist of its operation."""
    return LayerSettings(
        id=layer_id, color=color, name=name, operation=operation, order=order,
        **_DEFAULTS[operation],
    )  # fmt: skip


class LayerPatch(_Strict):
    """``PATCH /files/{id}`` entry: the layer's ``id`` and only the fields that change."""

    id: int = Field(ge=1, le=100_000)
    name: str | None = Field(None, max_length=200)
    operation: Operation | None = None
    speed_mm_min: float | None = Field(None, gt=0, le=100_000)
    power_pct: float | None = Field(None, ge=0, le=100)
    passes: int | None = Field(None, ge=1, le=50)
    air_assist: bool | None = None
    order: int | None = Field(None, ge=-1000, le=1000)
    kerf_mm: float | None = Field(None, ge=0, le=5)
    tabs: TabSettings | None = None
    fill: FillSettings | None = None
    material_id: int | None = Field(None, ge=1)

    def apply(self, layer: LayerSettings) -> LayerSettings:
        """``layer`` with this patch's fields set (validated as a whole again); a field given
        as null is left as it is."""
        changes = self.model_dump(exclude_unset=True, exclude_none=True, exclude={"id"})
        return LayerSettings.model_validate({**layer.model_dump(), **changes})


def apply_layer_patches(
    layers: list[LayerSettings], patches: list[LayerPatch]
) -> list[LayerSettings]:
    """The file's layers with ``PATCH /files/{id}`` changes applied, in the file's order.

    Raises ``KeyError`` naming the first id the file does not have (the API answers 422 with
    the field ``layers[i].id``), and ``ValueError`` when a merged layer is invalid.
    """
    by_id = {layer.id: k for k, layer in enumerate(layers)}
    out = list(layers)
    for patch in patches:
        if patch.id not in by_id:
            raise KeyError(patch.id)
        k = by_id[patch.id]
        out[k] = patch.apply(out[k])
    return out


class Placement(_Strict):
    """Where a design (or image) goes on the bed.

    The design's box is the extent of what it burns. It is scaled to ``width_mm`` ×
    ``height_mm`` (one of them alone keeps the aspect ratio; neither keeps the document's
    size), mirrored left-right with ``mirror_x``, rotated counter-clockwise by ``rotation_deg``
    about its centre, and then moved so that the lower-left corner of the rotated box's
    bounds is at (``x_mm``, ``y_mm``). Without ``x_mm`` (or ``y_mm``) the box keeps its
    document position along that axis: the page's lower-left corner at the bed's origin.
    """

    x_mm: float | None = Field(None, ge=-10_000, le=10_000)
    y_mm: float | None = Field(None, ge=-10_000, le=10_000)
    width_mm: float | None = Field(None, gt=0, le=10_000)
    height_mm: float | None = Field(None, gt=0, le=10_000)
    rotation_deg: float = Field(0.0, ge=-360, le=360)
    mirror_x: bool = False
