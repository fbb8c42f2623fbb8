"""Interlock routes, and the debug-only driver of simulated inputs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from laserd.api.routing import ApiRoutes, principal
from laserd.auth.principal import Role
from laserd.keys import AUDIT, SAFETY
from laserd.origin import current_origin
from laserd.schemas.machine import GpioDriveIn, InterlockOut

routes = ApiRoutes("interlocks")


@routes.get("/interlocks", role=Role.guest, response=list[InterlockOut], summary="Interlock inputs")
async def list_interlocks(request: web.Request) -> list[dict[str, Any]]:
    return request.app[SAFETY].snapshot()


@routes.post(
    "/debug/gpio/{name}",
    role=Role.admin,
    body=GpioDriveIn,
    response=list[InterlockOut],
    summary="Drive a simulated input (debug mode only)",
    debug_only=True,
    errors=(404, 409),
)
async def drive_gpio(request: web.Request, body: GpioDriveIn) -> list[dict[str, Any]]:
    name = request.match_info["name"]
    request.app[SAFETY].drive(name, body.safe)
    await request.app[AUDIT].record(
        "debug_gpio",
        actor=principal(request),
        target=f"gpio:{name}",
        details={"safe": body.safe},
        origin=current_origin(),
    )
    return request.app[SAFETY].snapshot()
