"""A material's settings per operation: the one model the API, the store and the importers use.

The vector operations (``cut``, ``score``, ``fill``) carry exactly the fields of a design layer
(API.md, "Designs"), so applying a material to a layer is a plain copy; ``image`` carries the
material-related fields of a project's ``laser`` settings (:class:`laserd.laser.LaserSettings`)
and never its placement (size, origin) or travel speed, which belong to the job, not to the
material.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from laserd.laser import Dither, LaserMode, LaserSettings


class Operation(StrEnum):
    cut = "cut"
    score = "score"
    fill = "fill"
    image = "image"


class LaserType(StrEnum):
    """The kind of source a material's values were found on (they do not transfer)."""

    diode = "diode"
    co2 = "co2"
    fiber = "fiber"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TabSettings(_Strict):
    """Bridges left uncut so cut parts stay in the sheet (count per closed shape)."""

    count: int = Field(0, ge=0, le=100, description="tabs per closed shape; 0: none")
    width_mm: float = Field(0.5, ge=0, le=50, description="length of each uncut bridge")


class FillSettings(_Strict):
    """Hatching of filled areas (used by ``fill`` operations)."""

    interval_mm: float = Field(0.1, ge=0.01, le=10, description="distance between hatch lines")
    angle_deg: float = Field(0.0, ge=-360, le=360, description="hatch direction, 0 = along X")
    crosshatch: bool = Field(False, description="a second pass at right angles")
    bidirectional: bool = Field(True, description="hatch in both directions (serpentine)")
    overscan_mm: float = Field(2.0, ge=0, le=100, description="laser-off run-in and run-out")


class OperationSettings(_Strict):
    """One vector operation's settings, in a design layer's field names."""

    speed_mm_min: float = Field(gt=0, le=100_000, description="feed while the beam is on")
    power_pct: float = Field(ge=0, le=100, description="100 % is the controller's $30")
    passes: int = Field(1, ge=1, le=50)
    air_assist: bool = Field(False, description="M8 during this operation")
    kerf_mm: float = Field(0.0, ge=-5, le=5, description="offset of closed cuts (beam width)")
    tabs: TabSettings = Field(default_factory=TabSettings)
    fill: FillSettings = Field(default_factory=FillSettings)


#: Fields of a project's ``laser`` settings that describe the material, not the job.
IMAGE_FIELDS: tuple[str, ...] = (
    "mode",
    "power_min_pct",
    "power_max_pct",
    "speed_mm_min",
    "passes",
    "air_assist",
    "line_interval_mm",
    "dither",
    "threshold",
    "invert",
    "overscan_mm",
    "bidirectional",
    "brightness",
    "contrast",
    "gamma",
)

#: The project fields' definitions, reused below as the fields' defaults (pydantic takes a
#: ``FieldInfo`` there as it takes ``Field(...)``; typed Any, as the type checker cannot know).
_LASER: dict[str, Any] = LaserSettings.model_fields


class ImageSettings(_Strict):
    """Raster engraving settings: the project ``laser`` fields a material decides.

    Each field reuses the project field's definition (range, default, description), so a value
    valid here is valid in a project and the two cannot drift apart.
    """

    mode: LaserMode = _LASER["mode"]
    power_min_pct: float = _LASER["power_min_pct"]
    power_max_pct: float = _LASER["power_max_pct"]
    speed_mm_min: float = _LASER["speed_mm_min"]
    passes: int = _LASER["passes"]
    air_assist: bool = _LASER["air_assist"]
    line_interval_mm: float = _LASER["line_interval_mm"]
    dither: Dither = _LASER["dither"]
    threshold: int = _LASER["threshold"]
    invert: bool = _LASER["invert"]
    overscan_mm: float = _LASER["overscan_mm"]
    bidirectional: bool = _LASER["bidirectional"]
    brightness: float = _LASER["brightness"]
    contrast: float = _LASER["contrast"]
    gamma: float = _LASER["gamma"]

    @model_validator(mode="after")
    def _power_order(self) -> ImageSettings:
        lo, hi = self.power_min_pct, self.power_max_pct
        if lo > hi:
            raise ValueError(f"power_min_pct ({lo:g}) must not exceed power_max_pct ({hi:g})")
        return self


class MaterialSettings(_Strict):
    """Settings per operation; each optional, at least one given."""

    cut: OperationSettings | None = None
    score: OperationSettings | None = None
    fill: OperationSettings | None = None
    image: ImageSettings | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> MaterialSettings:
        if not self.operations():
            raise ValueError("give the settings of at least one operation: cut, score, fill, image")
        return self

    def operations(self) -> list[Operation]:
        return [op for op in Operation if getattr(self, op.value) is not None]

    def to_json(self) -> dict[str, Any]:
        """Only the operations present (what the store keeps)."""
        return self.model_dump(mode="json", exclude_none=True)
