"""The ``laser`` settings of a project (API.md, "Projects and files").

One pydantic model is both the request validation and the OpenAPI source, and the raster
converter reads the same object, so a value the API accepted is always a value the converter
can use. Unknown keys are refused (``extra="forbid"``): a misspelt ``power_max_pct`` silently
falling back to the default would burn at the wrong power.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LaserMode(StrEnum):
    """GRBL laser-mode spindle commands.

    ``M4`` (dynamic) scales power with the actual speed, so corners and accelerations do not
    burn darker; ``M3`` keeps constant power, which some materials and cutting want.
    """

    M4 = "M4"
    M3 = "M3"


class Dither(StrEnum):
    """How grey levels become laser power.

    ``grayscale`` varies the power per pixel; every other mode turns each pixel fully on or off:
    ``threshold`` by comparing with ``threshold``, ``ordered`` with an 8×8 Bayer matrix, and the
    rest by error diffusion with the named kernel.
    """

    grayscale = "grayscale"
    threshold = "threshold"
    ordered = "ordered"
    floyd_steinberg = "floyd_steinberg"
    atkinson = "atkinson"
    jarvis = "jarvis"
    stucki = "stucki"
    sierra = "sierra"


class OriginMm(BaseModel):
    """Where the image's lower-left corner goes on the bed, in work coordinates."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(0.0, ge=-10_000, le=10_000, description="mm")
    y: float = Field(0.0, ge=-10_000, le=10_000, description="mm")


class LaserSettings(BaseModel):
    """Per-project laser and raster parameters, validated with sensible defaults."""

    model_config = ConfigDict(extra="forbid")

    mode: LaserMode = Field(LaserMode.M4, description="M4 dynamic power (default) or M3 constant")
    power_min_pct: float = Field(
        0.0, ge=0, le=100, description="power for the lightest burnt grey (grayscale mode)"
    )
    power_max_pct: float = Field(
        100.0, ge=0, le=100, description="power for black; 100 % is the controller's $30"
    )
    speed_mm_min: float = Field(3000.0, gt=0, le=100_000, description="engraving feed")
    travel_mm_min: float = Field(6000.0, gt=0, le=100_000, description="feed of G0 travel moves")
    passes: int = Field(1, ge=1, le=50, description="times the whole job is repeated")
    air_assist: bool = Field(False, description="M8 before the job, M9 after")
    line_interval_mm: float = Field(
        0.1, ge=0.01, le=10, description="distance between raster lines and pixel size"
    )
    dither: Dither = Field(Dither.grayscale, description="grey-to-power method")
    threshold: int = Field(128, ge=0, le=255, description="grey below this burns (threshold mode)")
    invert: bool = Field(False, description="burn the light parts instead of the dark ones")
    overscan_mm: float = Field(
        2.0, ge=0, le=100, description="laser-off run-in and run-out at engraving speed"
    )
    bidirectional: bool = Field(True, description="engrave in both directions (serpentine)")
    width_mm: float | None = Field(
        None, gt=0, le=10_000, description="image width on the bed; keeps aspect if alone"
    )
    height_mm: float | None = Field(
        None, gt=0, le=10_000, description="image height on the bed; keeps aspect if alone"
    )
    origin_mm: OriginMm = Field(default_factory=OriginMm, description="lower-left corner")
    brightness: float = Field(0.0, ge=-100, le=100, description="-100 (darker) .. 100 (lighter)")
    contrast: float = Field(0.0, ge=-100, le=100, description="-100 (flat) .. 100 (harsh)")
    gamma: float = Field(1.0, ge=0.2, le=5.0, description="> 1 lightens mid-tones")
    power_levels: int = Field(
        256, ge=2, le=256, description="distinct power steps in grayscale mode (fewer: less G-code)"
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> LaserSettings:
        if self.power_min_pct > self.power_max_pct:
            raise ValueError(
                f"power_min_pct ({self.power_min_pct:g}) must not exceed "
                f"power_max_pct ({self.power_max_pct:g})"
            )
        if self.width_mm is not None and self.width_mm < self.line_interval_mm:
            raise ValueError("width_mm must be at least one line_interval_mm")
        if self.height_mm is not None and self.height_mm < self.line_interval_mm:
            raise ValueError("height_mm must be at least one line_interval_mm")
        return self

    def size_px(self, image_w_px: int, image_h_px: int) -> tuple[int, int]:
        """Pixel grid of the engraving: one pixel per ``line_interval_mm`` in both directions.

        With neither size given the image keeps its own pixel count (no resampling); with one
        the other follows the image's aspect ratio.
        """
        step = self.line_interval_mm
        if self.width_mm is None and self.height_mm is None:
            return image_w_px, image_h_px
        if self.width_mm is not None and self.height_mm is not None:
            w_mm, h_mm = self.width_mm, self.height_mm
        elif self.width_mm is not None:
            w_mm = self.width_mm
            h_mm = w_mm * image_h_px / image_w_px
        else:
            assert self.height_mm is not None
            h_mm = self.height_mm
            w_mm = h_mm * image_w_px / image_h_px
        return max(1, round(w_mm / step)), max(1, round(h_mm / step))
