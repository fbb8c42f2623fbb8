"""Projects and files: request and response models (API.md, "Projects and files")."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from laserd.imaging.laser_settings import LaserSettings
from laserd.schemas.common import MAX_ID, Page, PageQuery, StrictModel
from laserd.schemas.designs import LayerPatch, LayerSettings, Placement

#: One line of printable text with something visible in it.
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"


class ProjectCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    description: str = Field("", max_length=5000)
    laser: LaserSettings = Field(default_factory=LaserSettings)


#: Every laser field optional: a PATCH names only what changes; the merged result is then
#: validated as a whole (ranges and cross-field rules), with errors under ``laser.<field>``.
#: (``Optional[...]`` because a field's annotation is a run-time value, typed "type or None".)
_LASER_PATCH_FIELDS: dict[str, Any] = {
    name: (Optional[info.annotation], Field(None, description=info.description))  # noqa: UP045
    for name, info in LaserSettings.model_fields.items()
}
LaserPatch = create_model(
    "LaserPatch", __config__=ConfigDict(extra="forbid"), **_LASER_PATCH_FIELDS
)


class ProjectPatch(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=NAME_PATTERN)
    description: str | None = Field(None, max_length=5000)
    laser: LaserPatch | None = Field(
        None, description="only the laser fields to change"
    )
    material_id: int | None = Field(
        None,
        ge=1,
        le=MAX_ID,
        description="the material the image settings come from; alone, its image settings are"
        " copied into laser; with laser, recorded as the source of those; null: none",
    )


class ProjectMaterial(BaseModel):
    """The material a project's image settings were copied from, as it is now."""

    id: int
    name: str
    thickness_mm: float | None
    matches: bool = Field(
        description="false when the project's or the material's settings changed since"
    )


class ProjectOut(BaseModel):
    id: int
    name: str
    description: str
    owner_id: int
    laser: LaserSettings
    material_id: int | None = None
    material: ProjectMaterial | None = Field(
        None, description="the recorded material (null when none, or no longer visible)"
    )
    created_at: str
    updated_at: str


class ProjectPage(Page[ProjectOut]):
    pass


class ProjectQuery(PageQuery):
    pass


class Bounds(BaseModel):
    xmin: float
    xmax: float
    ymin: float
    ymax: float


class FileStats(BaseModel):
    lines: int = Field(description="lines the streamer sends")
    bounds: Bounds = Field(description="extent of the toolpath in work coordinates (mm)")
    estimated_s: float = Field(
        description="job time from the model of GRBL's planner and the serial link (seconds)"
    )
    estimate_settings: dict[str, float] | None = Field(
        None,
        description="the controller's $ values the estimate used, keyed by number "
        '("11", "12", "30", "32", "100"-"102", "110"-"112", "120"-"122"): the last read '
        "from the controller, GRBL laser defaults before one was connected",
    )
    laser_on_mm: float = Field(description="distance travelled with the beam on")
    travel_mm: float = Field(0.0, description="distance travelled with the beam off")
    laser_bounds: Bounds | None = Field(
        None, description="extent of the burning moves alone (no travel, no overscan)"
    )
    design_box: Bounds | None = Field(
        None,
        description="designs and placed images: the placed box whose lower-left corner is "
        "placement.x_mm/y_mm (all the design's geometry, turned as placed)",
    )


class FileOut(BaseModel):
    id: int
    project_id: int
    owner_id: int
    name: str = Field(description="the uploaded name, sanitised; never a path on the server")
    kind: Literal["gcode", "image", "svg", "dxf"]
    size: int
    sha256: str
    status: Literal["pending", "processing", "ready", "failed"]
    progress: float = Field(description="0..1 while processing")
    error: str | None
    stats: FileStats | None
    warnings: list[str] = Field(default_factory=list)
    layers: list[LayerSettings] | None = Field(
        None, description="a design's layers (svg, dxf) once read; null for other kinds"
    )
    placement: Placement | None = Field(
        None, description="where an image or design goes on the bed; null: as drawn / laser"
    )
    created_at: str
    updated_at: str
    processed_at: str | None


class FilePatch(StrictModel):
    """``PATCH /files/{id}``: changed layer fields (by ``id``) and/or a new placement."""

    layers: list[LayerPatch] | None = Field(
        None, max_length=1000, description="each: the layer's id and only the fields to change"
    )
    placement: Placement | None = Field(None, description="replaces the file's placement")


class FilePage(Page[FileOut]):
    pass


class PreviewQuery(StrictModel):
    size: Literal["full", "thumb"] = "full"


#: Kept in the stored stats for the job runner's ETA; too bulky for the API's file shape.
_PRIVATE_STATS = frozenset({"estimate_checkpoints"})


def _public_stats(stats: dict[str, Any] | None) -> dict[str, Any] | None:
    if not stats:
        return stats
    return {k: v for k, v in stats.items() if k not in _PRIVATE_STATS}


def file_out(row: dict[str, Any]) -> dict[str, Any]:
    """A ``files`` row (decoded) as the API shape: also the payload of ``file`` events."""
    return {
        "id": row["id"],
        "project_id": row["project_id"],
        "owner_id": row["owner_id"],
        "name": row["name"],
        "kind": row["kind"],
        "size": row["size"],
        "sha256": row["sha256"],
        "status": row["status"],
        "progress": row["progress"],
        "error": row["error"],
        "stats": _public_stats(row["stats"]),
        "warnings": row.get("warnings") or [],
        "layers": row.get("layers"),
        "placement": row.get("placement"),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "processed_at": row["processed_at"],
    }
