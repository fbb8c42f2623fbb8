"""A material's settings per operation: the one model the API, the store and the importers use.

The vector operations (``cut``, ``score``, ``fill``) carry exactly the fields of a design layer
(API.md, "Designs"; the same models: :mod:`laserd.schemas.designs`), so applying a material to
a layer is a plain copy; ``image`` carries the material-related fields of a project's
``laser`` settings (:class:`laserd.imaging.laser_settings.LaserSettings`) and never its
placement (size, origin) or travel speed, which belong to the job, not to the material.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from laserd.imaging.laser_settings import Dither, LaserMode, LaserSettings
from laserd.schemas.designs import FillSettings, LayerSettings, TabSettings


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


#: The layer fields' definitions, reused as defaults (pydantic takes a ``FieldInfo`` there; typed
#: Any, as for ``_LASER`` below: the type checker cannot know).
_LAYER: dict[str, Any] = LayerSettings.model_fields


class OperationSettings(_Strict):
    """One vector operation's settings: a design layer's fields, with the layer's own ranges
    and defaults (:class:`laserd.schemas.designs.LayerSettings`), so a material applied to a
    layer is always a valid layer. Speed and power have no default: a material states them.
    """

    speed_mm_min: float = Field(gt=0, le=100_000, description="feed while the beam is on")
    power_pct: float = Field(ge=0, le=100, description="100 % is the controller's $30")
    passes: int = _LAYER["passes"]
    air_assist: bool = _LAYER["air_assist"]
    kerf_mm: float = _LAYER["kerf_mm"]
    tabs: TabSettings = _LAYER["tabs"]
    fill: FillSettings = _LAYER["fill"]


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
