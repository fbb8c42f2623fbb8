"""GRBL bridge routes: see who waits, accept or reject, end the running session."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from laserd import errors
from laserd.api.routing import ApiRoutes, path_id, principal
from laserd.auth.principal import Role
from laserd.bridge.server import Bridge
from laserd.keys import BRIDGE, SETTINGS
from laserd.schemas.bridge import BridgeOut

routes = ApiRoutes("bridge")


def _bridge(request: web.Request) -> Bridge:
    bridge = request.app.get(BRIDGE)
    if bridge is None:
        raise errors.Conflict(
            "The GRBL bridge is off ([bridge] enabled = false).", code="bridge_disabled"
        )
    return bridge


@routes.get("/bridge", role=Role.guest, response=BridgeOut, summary="The bridge and its session")
async def get_bridge(request: web.Request) -> dict[str, Any]:
    bridge = request.app.get(BRIDGE)
    if bridge is None:
        cfg = request.app[SETTINGS].bridge
        return {"enabled": False, "port": cfg.port, "allow": list(cfg.allow), "pending": [],
                "session": None}
    return bridge.view()


@routes.post(
    "/bridge/pending/{id}/accept",
    role=Role.user,
    response=BridgeOut,
    summary="Accept a waiting connection: it becomes a session (a job of yours)",
    errors=(404, 409, 503),
)
async def accept(request: web.Request) -> dict[str, Any]:
    """409 ``machine_busy`` (a job, a frame, another session), ``interlock_open``,
    ``laser_mode_off``, ``bridge_disabled``; 503 when the controller is not connected."""
    return await _bridge(request).accept(path_id(request), principal(request))


@routes.post(
    "/bridge/pending/{id}/reject",
    role=Role.user,
    response=BridgeOut,
    summary="Reject a waiting connection (it is closed)",
    errors=(404, 409),
)
async def reject(request: web.Request) -> dict[str, Any]:
    return await _bridge(request).reject(path_id(request), principal(request))


@routes.post(
    "/bridge/session/end",
    role=Role.user,
    response=BridgeOut,
    summary="End the running session like a job: laser off, safe stop, connection closed",
    errors=(409,),
)
async def end_session(request: web.Request) -> dict[str, Any]:
    return await _bridge(request).end(principal(request))
