"""``/materials``: the shared material library and each user's own entries.

Everyone signed in reads the shared entries and their own; users create and change their own
(``shared: false``); only admins create, change or delete shared ones. Another user's personal
entry answers 404 (no existence leak), except to admins. LightBurn ``.clb`` libraries import
(parsed in a worker thread, hostile XML refused) and export.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import BodyPartReader, web
from pydantic import ValidationError

from laserd import errors
from laserd.api.files_access import readable_file
from laserd.api.projects import owned_project
from laserd.api.routing import ApiRoutes, path_id, principal, raise_validation
from laserd.auth.principal import Principal, Role
from laserd.keys import AUDIT, DB, LIBRARY, SETTINGS
from laserd.materials import starter
from laserd.materials.apply import LAYER_FIELDS, layer_matches, op_into_layer
from laserd.materials.clb import MAX_BYTES, ClbError, import_library
from laserd.materials.clb_export import export_library
from laserd.materials.model import ImageSettings, MaterialSettings, OperationSettings
from laserd.materials.testgrid import TestGridRequest, grid_design_file
from laserd.origin import current_origin
from laserd.schemas.designs import LayerPatch
from laserd.schemas.materials import (
    FileGrid,
    ImportQuery,
    ImportResult,
    LayerMaterial,
    MaterialCreate,
    MaterialOut,
    MaterialPage,
    MaterialPatch,
    MaterialQuery,
    RestoreResult,
    TestGridOut,
)
from laserd.schemas.projects import file_out
from laserd.store import materials as store

routes = ApiRoutes("materials")

READ_CHUNK_BYTES = 256 * 1024


def material_out(row: dict[str, Any]) -> MaterialOut:
    return MaterialOut(
        id=row["id"],
        name=row["name"],
        thickness_mm=row["thickness_mm"],
        description=row["description"],
        shared=row["shared"],
        owner_id=row["owner_id"],
        laser_type=row["laser_type"],
        settings=row["settings"],
        starter=row["starter_key"] is not None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _audit_shared(
    request: web.Request, event: str, target: str, details: dict[str, Any] | None = None
) -> None:
    """Changes to the shared library are recorded (``GET /audit?event=material``): everyone at
    the machine relies on it, so who changed a proven setting must be answerable."""
    await request.app[AUDIT].record(
        event, actor=principal(request), target=target, details=details, origin=current_origin()
    )


def may_see(who: Principal, row: dict[str, Any]) -> bool:
    return bool(row["shared"]) or row["owner_id"] == who.user_id or who.is_admin


async def visible_material(request: web.Request, material_id: int) -> dict[str, Any]:
    """The material if the caller may see it, else 404."""
    row = await store.get(request.app[DB], material_id)
    if row is None or not may_see(principal(request), row):
        raise errors.NotFound("No such material.")
    return row


def _check_may_change(who: Principal, row: dict[str, Any]) -> None:
    if row["shared"] and not who.is_admin:
        raise errors.Forbidden("Only admins change the shared library.")


@routes.get(
    "/materials",
    role=Role.guest,
    query=MaterialQuery,
    response=MaterialPage,
    summary="The shared library and your own materials, by name (search with q, thickness_mm)",
    errors=(422,),
)
async def list_materials(request: web.Request, query: MaterialQuery) -> MaterialPage:
    rows, total = await store.page_visible(
        request.app[DB],
        viewer_id=principal(request).user_id,
        q=query.q,
        thickness_mm=query.thickness_mm,
        limit=query.limit,
        offset=query.offset,
    )
    return MaterialPage(
        items=[material_out(r) for r in rows], total=total, limit=query.limit, offset=query.offset
    )


@routes.post(
    "/materials",
    role=Role.user,
    body=MaterialCreate,
    response=MaterialOut,
    status=201,
    summary="Add a material (shared: admins only)",
    errors=(403, 422),
)
async def create_material(request: web.Request, body: MaterialCreate) -> MaterialOut:
    who = principal(request)
    if body.shared and not who.is_admin:
        raise errors.Forbidden("Only admins add to the shared library.")
    row = await store.insert(
        request.app[DB],
        owner_id=who.user_id,
        shared=body.shared,
        name=body.name,
        thickness_mm=body.thickness_mm,
        description=body.description,
        laser_type=body.laser_type.value if body.laser_type else None,
        settings=body.settings.to_json(),
    )
    if row["shared"]:
        await _audit_shared(
            request, "material_created", f"material:{row['id']}", {"name": body.name}
        )
    return material_out(row)


@routes.get(
    "/materials/export.clb",
    role=Role.guest,
    produces={"application/xml": "a LightBurn material library (.clb)"},
    summary="Every material you can see, as a LightBurn library",
)
async def export_materials(request: web.Request) -> web.Response:
    """One ``Entry`` per operation; see :mod:`laserd.materials.clb` for the mapping."""
    rows = await store.all_visible(request.app[DB], principal(request).user_id)
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(None, export_library, rows)
    return web.Response(
        body=body,
        content_type="application/xml",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="laserd-materials.clb"'},
    )


async def _read_file_part(request: web.Request) -> bytes:
    if request.content_type != "multipart/form-data":
        raise errors.UnsupportedMediaType(
            "Send the library as multipart/form-data in a field named 'file'."
        )
    too_large = errors.PayloadTooLarge(
        f"The library is larger than the limit of {MAX_BYTES // (1024 * 1024)} MB."
    )
    if (request.content_length or 0) > MAX_BYTES + 64 * 1024:
        raise too_large
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                raise errors.ValidationFailed.field(
                    "file", "a multipart field named 'file' is required"
                )
            if not isinstance(part, BodyPartReader) or part.name != "file":
                continue
            data = bytearray()
            while chunk := await part.read_chunk(READ_CHUNK_BYTES):
                data += chunk
                if len(data) > MAX_BYTES:
                    raise too_large
            return bytes(data)
    except ValueError as exc:  # aiohttp's multipart reader: a malformed body
        raise errors.BadRequest(f"The multipart body is malformed: {exc}") from None


@routes.post(
    "/materials/import",
    role=Role.user,
    query=ImportQuery,
    response=ImportResult,
    status=201,
    consumes="multipart/form-data",
    summary="Import a LightBurn .clb library (multipart field 'file')",
    errors=(400, 403, 413, 415, 422),
)
async def import_materials(request: web.Request, query: ImportQuery) -> ImportResult:
    """Every entry that maps becomes a material (yours, or shared with ``?shared=true`` for
    admins); the others are listed in ``skipped`` with the reason. A file that is not a
    library at all, or that is hostile (DOCTYPE, entities, too big, too deep), is refused
    with 422 and nothing is created."""
    who = principal(request)
    if query.shared and not who.is_admin:
        raise errors.Forbidden("Only admins import into the shared library.")
    data = await _read_file_part(request)
    if not data:
        raise errors.ValidationFailed.field("file", "the file is empty")
    loop = asyncio.get_running_loop()
    try:
        outcome = await loop.run_in_executor(None, import_library, data)
    except ClbError as exc:
        raise errors.ValidationFailed.field("file", str(exc)) from None
    laser_type = query.laser_type.value if query.laser_type else None
    items = [
        {**item, "owner_id": who.user_id, "shared": query.shared, "laser_type": laser_type}
        for item in outcome.items
    ]
    if items:
        await store.insert_many(request.app[DB], items)
        if query.shared:
            await _audit_shared(request, "material_imported", "materials", {"created": len(items)})
    return ImportResult(
        created=len(items),
        skipped=outcome.skipped,  # type: ignore[arg-type]
        ignored_fields=dict(outcome.ignored_fields.most_common()),
    )


@routes.post(
    "/materials/starter",
    role=Role.admin,
    response=RestoreResult,
    summary="Put back the starter library's missing entries (edited ones are kept)",
)
async def restore_starter(request: web.Request) -> RestoreResult:
    created = await starter.restore(request.app[DB])
    if created:
        await _audit_shared(request, "material_starter_restored", "materials", {"created": created})
    return RestoreResult(created=created)


@routes.get(
    "/materials/{id:\\d+}",
    role=Role.guest,
    response=MaterialOut,
    summary="One material",
    errors=(404,),
)
async def get_material(request: web.Request) -> MaterialOut:
    return material_out(await visible_material(request, path_id(request)))


def _patched_settings(row: dict[str, Any], body: MaterialPatch) -> dict[str, Any]:
    assert body.settings is not None
    current: dict[str, Any] = dict(row["settings"])
    for op in body.settings.model_fields_set:
        change = getattr(body.settings, op)
        if change is None:
            current.pop(op, None)
            continue
        model = ImageSettings if op == "image" else OperationSettings
        base = current.get(op) or {}
        merged = {**base, **change}
        for nested in ("tabs", "fill"):
            if isinstance(base.get(nested), dict) and isinstance(change.get(nested), dict):
                merged[nested] = {**base[nested], **change[nested]}
        try:
            current[op] = model.model_validate(merged).model_dump(mode="json")
        except ValidationError as exc:
            raise_validation(exc, f"settings.{op}")
    try:
        return MaterialSettings.model_validate(current).to_json()
    except ValidationError as exc:
        raise_validation(exc, "settings")
    raise AssertionError("unreachable")


@routes.patch(
    "/materials/{id:\\d+}",
    role=Role.user,
    body=MaterialPatch,
    response=MaterialOut,
    summary="Change a material (shared ones: admins only)",
    errors=(403, 404, 422),
)
async def patch_material(request: web.Request, body: MaterialPatch) -> MaterialOut:
    """``settings`` names only the operations to change: an object is merged onto that
    operation's current values and validated as a whole; ``null`` removes the operation."""
    who = principal(request)
    row = await visible_material(request, path_id(request))
    _check_may_change(who, row)
    changes: dict[str, Any] = {}
    given = body.model_fields_set
    if "shared" in given and body.shared is not None and body.shared != row["shared"]:
        if not who.is_admin:
            raise errors.Forbidden("Only admins move materials into the shared library.")
        changes["shared"] = body.shared
    for name in ("name", "description"):
        if name in given:
            value = getattr(body, name)
            if value is None:
                raise errors.ValidationFailed.field(name, "must not be null")
            changes[name] = value
    if "thickness_mm" in given:
        changes["thickness_mm"] = body.thickness_mm
    if "laser_type" in given:
        changes["laser_type"] = body.laser_type.value if body.laser_type else None
    if "settings" in given and body.settings is not None:
        changes["settings"] = _patched_settings(row, body)
    if changes:
        await store.update(request.app[DB], row["id"], changes)
        if row["shared"] or changes.get("shared"):
            await _audit_shared(
                request, "material_updated", f"material:{row['id']}",
                {"name": row["name"], "changed": sorted(changes)},
            )  # fmt: skip
    updated = await store.get(request.app[DB], row["id"])
    assert updated is not None
    return material_out(updated)


@routes.delete(
    "/materials/{id:\\d+}",
    role=Role.user,
    summary="Delete a material (shared ones: admins only)",
    errors=(403, 404),
)
async def delete_material(request: web.Request) -> None:
    """Projects and layers that used it keep their copied settings; their link is cleared."""
    who = principal(request)
    row = await visible_material(request, path_id(request))
    _check_may_change(who, row)
    await store.delete(request.app[DB], row["id"])
    if row["shared"]:
        await _audit_shared(
            request, "material_deleted", f"material:{row['id']}", {"name": row["name"]}
        )


# ---------------------------------------------------------------- test grids


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


@routes.post(
    "/projects/{id}/test-grid",
    role=Role.user,
    body=TestGridRequest,
    response=TestGridOut,
    status=201,
    summary="Make a power × speed test grid in the project, ready to run",
    errors=(404, 413, 422, 507),
)
async def make_test_grid(request: web.Request, body: TestGridRequest) -> TestGridOut:
    """Cells of power rising to the right and speed rising upwards, each burnt at its own
    values and labelled with them; placed (``placement``, default: the bed's origin) and
    checked against the bed (422 ``off_bed``). The answer is the new design file (SVG, one
    layer per cell with that cell's settings, the labels on a score layer), processed like any
    upload and placed or changed like any design, with ``grid`` listing every cell;
    ``GET /files/{id}/grid`` gives it again later.
    """
    project = await owned_project(request, path_id(request))
    settings = request.app[SETTINGS]
    bed = (settings.machine.bed_mm.x, settings.machine.bed_mm.y)
    loop = asyncio.get_running_loop()
    svg, grid = await loop.run_in_executor(
        None, functools.partial(grid_design_file, body, bed_mm=bed)
    )
    powers = {c["power_pct"] for c in grid.cells}
    speeds = {c["speed_mm_min"] for c in grid.cells}
    name = f"test-grid {body.operation} {len(powers)}x{len(speeds)}.svg"
    row = await request.app[LIBRARY].accept(
        project,
        _one_chunk(svg),
        name,
        layers=[layer.model_dump(mode="json") for layer in grid.design.layers],
        placement=body.placement.model_dump(mode="json") if body.placement else None,
    )
    cells = [{k: c[k] for k in ("row", "col", "power_pct", "speed_mm_min")} for c in grid.cells]
    await store.insert_grid(
        request.app[DB],
        file_id=row["id"],
        operation=body.operation,
        request=body.model_dump(mode="json"),
        cells=cells,
    )
    return TestGridOut.model_validate({**file_out(row), "operation": body.operation, "grid": cells})


@routes.get(
    "/files/{id}/grid",
    role=Role.user,
    response=FileGrid,
    summary="The cells of a test-grid file (404 for other files)",
    errors=(404,),
)
async def file_grid(request: web.Request) -> FileGrid:
    file = await readable_file(request, path_id(request))
    grid = await store.get_grid(request.app[DB], file["id"])
    if grid is None:
        raise errors.NotFound("This file is not a test grid.")
    req = grid["request"]
    air = req.get("air_assist")
    return FileGrid(
        file_id=file["id"],
        operation=grid["operation"],
        passes=req.get("passes", 1),
        air_assist=air if air is not None else grid["operation"] == "cut",
        grid=grid["cells"],
    )


# ---------------------------------------------------------------- materials on design layers


async def expand_layer_materials(
    conn: Any, file: dict[str, Any], patches: list[LayerPatch] | None
) -> list[LayerPatch] | None:
    """``PATCH /files/{id}``: a layer patch that names a ``material_id`` and no settings takes
    the material's settings for the layer's operation (like ``material_id`` on a project);
    with settings, it only records the source. Either way the material must be one the file's
    owner can see and must have settings for that operation (422 ``layers[i].material_id``).
    """
    if not patches:
        return patches
    current = {lay["id"]: lay for lay in (file.get("layers") or [])}
    out: list[LayerPatch] = []
    for i, patch in enumerate(patches):
        if patch.material_id is None or "material_id" not in patch.model_fields_set:
            out.append(patch)
            continue
        field_name = f"layers[{i}].material_id"
        material = await store.get(conn, patch.material_id)
        if material is None or not (material["shared"] or material["owner_id"] == file["owner_id"]):
            raise errors.ValidationFailed.field(field_name, "no such material")
        operation = patch.operation or (current.get(patch.id) or {}).get("operation")
        settings = material["settings"].get(str(operation)) if operation else None
        if operation not in ("cut", "score", "fill") or settings is None:
            raise errors.ValidationFailed.field(
                field_name, f"this material has no settings for a {operation or 'unknown'} layer"
            )
        given = patch.model_fields_set & set(LAYER_FIELDS)
        if given:
            out.append(patch)  # the client copied the settings itself; the id is recorded
            continue
        expanded = op_into_layer(patch.model_dump(exclude_unset=True), settings, material["id"])
        out.append(LayerPatch.model_validate(expanded))
    return out


@routes.get(
    "/files/{id}/materials",
    role=Role.user,
    response=list[LayerMaterial],
    summary="Materials of a design's layers, and whether the layers still match them",
    errors=(404,),
)
async def file_layer_materials(request: web.Request) -> list[LayerMaterial]:
    """One entry per layer that records a ``material_id``; ``matches`` is false when the layer
    or the material was changed since (``name`` null: the material is gone or not visible)."""
    file = await readable_file(request, path_id(request))
    layers = [lay for lay in (file.get("layers") or []) if lay.get("material_id")]
    found = await store.get_many(request.app[DB], {lay["material_id"] for lay in layers})
    out = []
    for lay in layers:
        m = found.get(lay["material_id"])
        visible = m is not None and (m["shared"] or m["owner_id"] == file["owner_id"])
        op = m["settings"].get(lay["operation"]) if m is not None and visible else None
        out.append(
            LayerMaterial(
                layer_id=lay["id"],
                material_id=lay["material_id"],
                name=m["name"] if m is not None and visible else None,
                matches=layer_matches(lay, op),
            )
        )
    return out
