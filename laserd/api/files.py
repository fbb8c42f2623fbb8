"""``/files/{id}``: one uploaded file, its downloads and preview, re-processing, deletion.

Access is the owner's (and admins'); another user's file answers 404 (see
:mod:`laserd.api.files_access`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from laserd import errors
from laserd.api.files_access import readable_file
from laserd.api.materials import expand_layer_materials
from laserd.api.routing import ApiRoutes, path_id
from laserd.auth.principal import Role
from laserd.keys import DB, LIBRARY, SETTINGS
from laserd.schemas.projects import FileOut, FilePatch, PreviewQuery, file_out

routes = ApiRoutes("files")


def _not_ready(file: dict[str, Any]) -> errors.Conflict:
    return errors.Conflict(
        f"The file is not processed yet (status {file['status']}).", code="file_not_ready"
    )


def _attachment(name: str) -> str:
    """A Content-Disposition that survives any display name (RFC 6266 / 5987)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _send(path: Path, content_type: str, headers: dict[str, str]) -> web.FileResponse:
    if not path.is_file():
        raise errors.NotFound("The file's data is missing on the server.")
    return web.FileResponse(path, headers={"Content-Type": content_type, **headers})


@routes.get("/files/{id}", role=Role.user, response=FileOut, summary="One file", errors=(404,))
async def get_file(request: web.Request) -> FileOut:
    return FileOut.model_validate(file_out(await readable_file(request, path_id(request))))


#: The stored extension (set from the sniffed content) → the type the original is served as.
#: A fixed table, not the host's mime.types, so the answer is what the document says.
ORIGINAL_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".webp": "image/webp",
    ".tif": "image/tiff",
}


@routes.get(
    "/files/{id}/original",
    role=Role.user,
    summary="Download the upload as it was received",
    produces={
        "text/plain": "an uploaded G-code file",
        **{t: "an uploaded image" for t in ORIGINAL_TYPES.values()},
        "application/octet-stream": "anything else",
    },
    errors=(404,),
)
async def download_original(request: web.Request) -> web.FileResponse:
    file = await readable_file(request, path_id(request))
    settings = request.app[SETTINGS]
    if file["kind"] == "gcode":
        ctype = "text/plain"
    else:
        ext = os.path.splitext(file["stored_name"])[1].lower()
        ctype = ORIGINAL_TYPES.get(ext, "application/octet-stream")
    return _send(
        settings.uploads_dir / file["stored_name"],
        ctype,
        {"Content-Disposition": _attachment(file["name"])},
    )


@routes.get(
    "/files/{id}/gcode",
    role=Role.user,
    summary="Download the G-code that a job streams (normalised: no comments or spaces)",
    produces={"text/plain": "one command per line"},
    errors=(404, 409),
)
async def download_gcode(request: web.Request) -> web.FileResponse:
    file = await readable_file(request, path_id(request))
    if file["status"] != "ready":
        raise _not_ready(file)
    stem = os.path.splitext(file["name"])[0] or "file"
    return _send(
        request.app[SETTINGS].gcode_path(file["id"]),
        "text/plain; charset=us-ascii",
        {"Content-Disposition": _attachment(f"{stem}.gcode")},
    )


@routes.get(
    "/files/{id}/preview.png",
    role=Role.user,
    query=PreviewQuery,
    summary="A picture of the toolpath (?size=thumb for the small one)",
    produces={"image/png": "burns darker with power, travel faint"},
    errors=(404, 409),
)
async def preview(request: web.Request, query: PreviewQuery) -> web.FileResponse:
    file = await readable_file(request, path_id(request))
    if file["status"] != "ready":
        raise _not_ready(file)
    path = request.app[SETTINGS].preview_path(file["id"], thumb=query.size == "thumb")
    return _send(path, "image/png", {"Cache-Control": "private, no-cache"})


@routes.post(
    "/files/{id}/process",
    role=Role.user,
    response=FileOut,
    status=202,
    summary="Process again with the project's current laser settings",
    errors=(404, 409, 422),
)
async def reprocess(request: web.Request) -> FileOut:
    file = await readable_file(request, path_id(request))
    row = await request.app[LIBRARY].reprocess(file["id"])
    return FileOut.model_validate(file_out(row))


@routes.patch(
    "/files/{id}",
    role=Role.user,
    body=FilePatch,
    response=FileOut,
    status=202,
    summary="Change a design's layers or a file's placement, and process it again",
    errors=(404, 409, 422),
)
async def patch_file(request: web.Request, body: FilePatch) -> FileOut:
    """``layers`` names each changed layer by ``id`` with only the fields that change (svg and
    dxf files, once read); a layer given only a ``material_id`` takes that material's settings
    for its operation; ``placement`` replaces where an image or design goes on the bed.
    The file is processed again with them (202); a design placed off the bed fails with its
    extent and the bed's in ``error``. 409 while a job uses the file."""
    file = await readable_file(request, path_id(request))
    layers = await expand_layer_materials(request.app[DB], file, body.layers)
    row = await request.app[LIBRARY].update_design(file["id"], layers, body.placement)
    return FileOut.model_validate(file_out(row))


@routes.delete(
    "/files/{id}",
    role=Role.user,
    summary="Delete a file and what was made from it (409 while a job uses it)",
    errors=(404, 409),
)
async def delete_file(request: web.Request) -> None:
    file = await readable_file(request, path_id(request))
    await request.app[LIBRARY].delete(file["id"])
