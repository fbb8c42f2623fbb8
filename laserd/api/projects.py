"""``/projects``: a user's projects with their laser settings, and uploads into them.

Owners see their own projects, admins everyone's; another user's project answers 404 (no
existence leak). Guests have no projects (the routes need the ``user`` role).
"""

from __future__ import annotations

from typing import Any

import aiosqlite
from aiohttp import web
from pydantic import ValidationError

from laserd import errors
from laserd.api.routing import ApiRoutes, path_id, principal, raise_validation
from laserd.api.uploads import accept_multipart
from laserd.auth.principal import Role
from laserd.imaging.laser_settings import LaserSettings
from laserd.keys import DB, LIBRARY, SETTINGS
from laserd.materials.apply import image_into_laser, image_matches
from laserd.schemas.common import PageQuery
from laserd.schemas.projects import (
    FileOut,
    FilePage,
    ProjectCreate,
    ProjectMaterial,
    ProjectOut,
    ProjectPage,
    ProjectPatch,
    ProjectQuery,
    file_out,
)
from laserd.store import files as files_store
from laserd.store import materials as materials_store
from laserd.store import projects as store

routes = ApiRoutes("projects")


def project_out(row: dict[str, Any], material: dict[str, Any] | None = None) -> ProjectOut:
    """``material``: the row of ``row["material_id"]`` when the project's owner may see it."""
    laser = LaserSettings.model_validate(row["laser"] or {})
    recorded = None
    if material is not None:
        recorded = ProjectMaterial(
            id=material["id"],
            name=material["name"],
            thickness_mm=material["thickness_mm"],
            matches=image_matches(laser.model_dump(mode="json"), material["settings"].get("image")),
        )
    return ProjectOut(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        owner_id=row["owner_id"],
        laser=laser,
        material_id=row.get("material_id"),
        material=recorded,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def projects_out(conn: aiosqlite.Connection, rows: list[dict[str, Any]]) -> list[ProjectOut]:
    """Projects with their recorded materials (one query for all of them)."""
    ids = {r["material_id"] for r in rows if r.get("material_id")}
    found = await materials_store.get_many(conn, ids)
    out = []
    for r in rows:
        m = found.get(r.get("material_id") or 0)
        visible = m is not None and (m["shared"] or m["owner_id"] == r["owner_id"])
        out.append(project_out(r, m if visible else None))
    return out


async def owned_project(request: web.Request, project_id: int) -> dict[str, Any]:
    """The project if the caller may see it (owner or admin), else 404."""
    who = principal(request)
    row = await store.get(request.app[DB], project_id)
    if row is None or (not who.is_admin and row["owner_id"] != who.user_id):
        raise errors.NotFound("No such project.")
    return row


@routes.get(
    "/projects",
    role=Role.user,
    query=ProjectQuery,
    response=ProjectPage,
    summary="List projects (yours; every user's for admins), newest first",
)
async def list_projects(request: web.Request, query: ProjectQuery) -> ProjectPage:
    who = principal(request)
    rows, total = await store.page(
        request.app[DB],
        owner_id=None if who.is_admin else who.user_id,
        limit=query.limit,
        offset=query.offset,
    )
    return ProjectPage(
        items=await projects_out(request.app[DB], rows),
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


@routes.post(
    "/projects",
    role=Role.user,
    body=ProjectCreate,
    response=ProjectOut,
    status=201,
    summary="Create a project (laser settings default where not given)",
    errors=(422,),
)
async def create_project(request: web.Request, body: ProjectCreate) -> ProjectOut:
    who = principal(request)
    row = await store.insert(
        request.app[DB],
        owner_id=who.user_id,
        name=body.name,
        description=body.description,
        laser=body.laser.model_dump(mode="json"),
    )
    return project_out(row)


@routes.get(
    "/projects/{id}", role=Role.user, response=ProjectOut, summary="One project", errors=(404,)
)
async def get_project(request: web.Request) -> ProjectOut:
    row = await owned_project(request, path_id(request))
    return (await projects_out(request.app[DB], [row]))[0]


@routes.patch(
    "/projects/{id}",
    role=Role.user,
    body=ProjectPatch,
    response=ProjectOut,
    summary="Rename, describe, or change some laser settings",
    errors=(404, 422),
)
async def patch_project(request: web.Request, body: ProjectPatch) -> ProjectOut:
    """``laser`` names only the fields to change; the result is validated as a whole. Files
    keep the settings they were processed with until re-processed (``POST /files/{id}/process``).
    Settings with which an image of the project could make more G-code than ``[processing]
    max_gcode_mb`` or the free disk space allow are refused (422 ``output_too_large``).

    ``material_id`` applies a material: alone, its image settings are copied into ``laser``
    (size and origin kept); with ``laser``, it records where the sent settings came from.
    The answer's ``material.matches`` tells later whether they were changed since.
    """
    row = await owned_project(request, path_id(request))
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.description is not None:
        changes["description"] = body.description
    material_image: dict[str, Any] | None = None
    if "material_id" in body.model_fields_set:
        changes["material_id"] = body.material_id
        if body.material_id is not None:
            material = await materials_store.get(request.app[DB], body.material_id)
            # the project's owner must be able to see it (an admin editing someone's project
            # cannot hand them another user's personal material)
            if material is None or not (
                material["shared"] or material["owner_id"] == row["owner_id"]
            ):
                raise errors.ValidationFailed.field("material_id", "no such material")
            material_image = material["settings"].get("image")
            if material_image is None:
                raise errors.ValidationFailed.field(
                    "material_id", "this material has no image settings"
                )
    if body.laser is not None or material_image is not None:
        merged = LaserSettings.model_validate(row["laser"] or {}).model_dump(mode="json")
        if body.laser is not None:
            merged.update(body.laser.model_dump(mode="json", exclude_unset=True))
        else:
            assert material_image is not None
            merged = image_into_laser(merged, material_image)
        try:
            laser = LaserSettings.model_validate(merged)
        except ValidationError as exc:
            raise_validation(exc, "laser")
        # Settings that would make a file of this project too big to process are refused now.
        await request.app[LIBRARY].check_settings(row["id"], laser)
        changes["laser"] = laser.model_dump(mode="json")
    if changes:
        await store.update(request.app[DB], row["id"], changes)
    updated = await store.get(request.app[DB], row["id"])
    assert updated is not None
    return (await projects_out(request.app[DB], [updated]))[0]


@routes.delete(
    "/projects/{id}",
    role=Role.user,
    summary="Delete a project with its files (409 while a job uses one of them)",
    errors=(404, 409),
)
async def delete_project(request: web.Request) -> None:
    row = await owned_project(request, path_id(request))
    await request.app[LIBRARY].delete_project(row["id"])


@routes.get(
    "/projects/{id}/files",
    role=Role.user,
    query=PageQuery,
    response=FilePage,
    summary="The project's files, newest first",
    errors=(404,),
)
async def list_files(request: web.Request, query: PageQuery) -> FilePage:
    row = await owned_project(request, path_id(request))
    rows, total = await files_store.page_for_project(
        request.app[DB], row["id"], limit=query.limit, offset=query.offset
    )
    return FilePage(
        items=[FileOut.model_validate(file_out(r)) for r in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


@routes.post(
    "/projects/{id}/files",
    role=Role.user,
    response=FileOut,
    status=201,
    consumes="multipart/form-data",
    summary="Upload G-code or an image (multipart field 'file'); processing follows",
    errors=(400, 404, 413, 415, 422, 507),
)
async def upload_file(request: web.Request) -> FileOut:
    """Streamed to disk with the size limit enforced while it arrives. Accepted, recognised by
    their content under any file name: G-code (``.gcode .gco .g .nc .cnc .ngc .tap .txt`` ...;
    comments of any length, such as base64 thumbnails, are skipped) and images (PNG, JPEG, BMP,
    GIF, WebP, TIFF); anything else is 415 with the reason. An image whose G-code at the
    project's settings could exceed ``[processing] max_gcode_mb`` or the free disk space is
    422 ``output_too_large``. Answers ``pending``; ``file`` events follow the processing, and
    ``GET /files/{id}`` shows the result."""
    project = await owned_project(request, path_id(request))
    row = await accept_multipart(request, request.app[SETTINGS], request.app[LIBRARY], project)
    return FileOut.model_validate(file_out(row))
