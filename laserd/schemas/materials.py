"""Materials: request and response models (API.md, "Materials")."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from laserd.materials.model import (
    ImageSettings,
    LaserType,
    MaterialSettings,
    OperationSettings,
)
from laserd.schemas.common import Page, PageQuery, StrictModel
from laserd.schemas.projects import NAME_PATTERN, FileOut

THICKNESS = Field(None, gt=0, le=1000, description="sheet thickness in mm; null: any or none")


class MaterialCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    thickness_mm: float | None = THICKNESS
    description: str = Field("", max_length=5000)
    laser_type: LaserType | None = None
    shared: bool = Field(False, description="in the shared library (admins only)")
    settings: MaterialSettings


class SettingsPatch(StrictModel):
    """Operations to change: an object is merged onto the current one, null removes it."""

    cut: dict[str, object] | None = None
    score: dict[str, object] | None = None
    fill: dict[str, object] | None = None
    image: dict[str, object] | None = None


class MaterialPatch(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=NAME_PATTERN)
    thickness_mm: float | None = THICKNESS
    description: str | None = Field(None, max_length=5000)
    laser_type: LaserType | None = None
    shared: bool | None = Field(None, description="move into or out of the shared library (admins)")
    settings: SettingsPatch | None = None


class SettingsOut(BaseModel):
    cut: OperationSettings | None = None
    score: OperationSettings | None = None
    fill: OperationSettings | None = None
    image: ImageSettings | None = None


class MaterialOut(BaseModel):
    id: int
    name: str
    thickness_mm: float | None
    description: str
    shared: bool
    owner_id: int | None = Field(description="who made it; null for the starter library")
    laser_type: LaserType | None
    settings: SettingsOut
    starter: bool = Field(description="from the starter library: a starting point to verify")
    created_at: str
    updated_at: str


class MaterialPage(Page[MaterialOut]):
    pass


class MaterialQuery(PageQuery):
    q: str | None = Field(None, max_length=200, description="part of the name or description")
    thickness_mm: float | None = Field(None, gt=0, le=1000)


class ImportQuery(StrictModel):
    shared: bool = Field(False, description="import into the shared library (admins only)")
    laser_type: LaserType | None = Field(
        None, description="the machine the library is for (a .clb file does not say)"
    )


class SkippedEntry(BaseModel):
    name: str
    reason: str


class ImportResult(BaseModel):
    created: int
    skipped: list[SkippedEntry]
    ignored_fields: dict[str, int] = Field(
        default_factory=dict,
        description="LightBurn fields with no meaning in laserd, and how many entries had each",
    )


class RestoreResult(BaseModel):
    created: int = Field(description="starter materials put back")


class GridCell(BaseModel):
    row: int = Field(description="0 at the bottom; speed rises with the row")
    col: int = Field(description="0 at the left; power rises with the column")
    power_pct: float
    speed_mm_min: float


class TestGridOut(FileOut):
    """The generated file (as ``GET /files/{id}``) with the grid it burns."""

    __test__: ClassVar[bool] = False  # a model, not a pytest test class

    operation: Literal["fill", "score", "cut"]
    grid: list[GridCell]


class FileGrid(BaseModel):
    file_id: int
    operation: Literal["fill", "score", "cut"]
    passes: int
    air_assist: bool
    grid: list[GridCell]


class LayerMaterial(BaseModel):
    layer_id: int
    material_id: int
    name: str | None = Field(description="null when the material is gone or not visible")
    matches: bool = Field(description="false when the layer or the material changed since")
