"""Machine routes: state, home, unlock, reset, connect, jog, frame, overrides, console, settings."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from laserd import errors
from laserd.api.files_access import readable_file
from laserd.api.routing import ApiRoutes, principal
from laserd.auth.principal import Role
from laserd.keys import AUDIT, MACHINE
from laserd.origin import current_origin
from laserd.schemas.machine import (
    ConsoleIn,
    ControllerSettings,
    ControllerSettingsOut,
    FrameIn,
    JogIn,
    MachineOut,
    OverridesIn,
    ReplyLines,
)

routes = ApiRoutes("machine")
BUSY = (409, 503)


async def _audit(request: web.Request, event: str, details: dict[str, Any] | None = None) -> None:
    await request.app[AUDIT].record(
        event, actor=principal(request), target="machine", details=details, origin=current_origin()
    )


@routes.get("/machine", role=Role.guest, response=MachineOut, summary="Machine state")
async def get_machine(request: web.Request) -> dict[str, Any]:
    return request.app[MACHINE].snapshot()


@routes.post("/machine/home", role=Role.user, response=ReplyLines, summary="Home ($H)", errors=BUSY)
async def home(request: web.Request) -> ReplyLines:
    await _audit(request, "machine_home")
    return ReplyLines(lines=await request.app[MACHINE].home())


@routes.post(
    "/machine/unlock", role=Role.user, response=ReplyLines, summary="Unlock ($X)", errors=BUSY
)
async def unlock(request: web.Request) -> ReplyLines:
    await _audit(request, "machine_unlock")
    return ReplyLines(lines=await request.app[MACHINE].unlock())


@routes.post(
    "/machine/reset", role=Role.user, response=MachineOut, summary="Soft reset", errors=BUSY
)
async def reset(request: web.Request) -> dict[str, Any]:
    await request.app[MACHINE].reset()
    await _audit(request, "machine_reset")
    return request.app[MACHINE].snapshot()


@routes.post(
    "/machine/connect",
    role=Role.user,
    response=MachineOut,
    summary="Open the serial port",
    errors=BUSY,
)
async def connect(request: web.Request) -> dict[str, Any]:
    await request.app[MACHINE].connect()
    return request.app[MACHINE].snapshot()


@routes.post(
    "/machine/disconnect",
    role=Role.user,
    response=MachineOut,
    summary="Close the serial port",
    errors=BUSY,
)
async def disconnect(request: web.Request) -> dict[str, Any]:
    await request.app[MACHINE].disconnect()
    await _audit(request, "machine_disconnect")
    return request.app[MACHINE].snapshot()


@routes.post(
    "/machine/jog",
    role=Role.user,
    body=JogIn,
    response=ReplyLines,
    summary="Jog ($J=)",
    errors=BUSY,
)
async def jog(request: web.Request, body: JogIn) -> ReplyLines:
    lines = await request.app[MACHINE].jog(
        x=body.x, y=body.y, z=body.z, feed=body.feed, relative=body.relative
    )
    return ReplyLines(lines=lines)


@routes.post(
    "/machine/jog/cancel",
    role=Role.user,
    response=None,
    status=204,
    summary="Cancel a jog",
    errors=(503,),
)
async def jog_cancel(request: web.Request) -> None:
    request.app[MACHINE].jog_cancel()


@routes.post(
    "/machine/frame",
    role=Role.user,
    body=FrameIn,
    response=MachineOut,
    status=202,
    summary="Trace the file's bounding box (laser off unless a low power is given)",
    errors=(404, *BUSY),
)
async def frame(request: web.Request, body: FrameIn) -> dict[str, Any]:
    file = await readable_file(request, body.file_id)
    stats = file.get("stats") or {}
    # What will burn, not the laser-off overscan around it.
    bounds = stats.get("laser_bounds") or stats.get("bounds")
    if file["status"] != "ready" or not bounds:
        raise errors.Conflict(
            "The file is not ready; its bounds are unknown.", code="file_not_ready"
        )
    laser = file.get("laser") or {}
    feed = body.feed_mm_min or float(laser.get("travel_mm_min") or 3000)
    await request.app[MACHINE].frame(bounds=bounds, power_pct=body.power_pct, feed_mm_min=feed)
    await _audit(request, "machine_frame", {"file_id": body.file_id, "power_pct": body.power_pct})
    return request.app[MACHINE].snapshot()


@routes.post(
    "/machine/overrides",
    role=Role.user,
    body=OverridesIn,
    response=MachineOut,
    summary="Feed, power and rapid overrides of the running job (409 when none runs)",
    errors=BUSY,
)
async def overrides(request: web.Request, body: OverridesIn) -> dict[str, Any]:
    """Only during a running or paused job, by its owner or an admin (409 otherwise:
    ``no_job_running``, ``machine_busy``). Every job starts and ends at 100 %."""
    request.app[MACHINE].overrides(
        principal(request), feed=body.feed, power=body.power, rapid=body.rapid
    )
    return request.app[MACHINE].snapshot()


@routes.post(
    "/machine/console",
    role=Role.admin,
    body=ConsoleIn,
    response=ReplyLines,
    summary="Send one raw line; answer the controller's reply lines",
    errors=BUSY,
)
async def console(request: web.Request, body: ConsoleIn) -> ReplyLines:
    await _audit(request, "machine_console", {"line": body.line})
    return ReplyLines(lines=await request.app[MACHINE].console(body.line))


@routes.get(
    "/machine/settings",
    role=Role.admin,
    response=ControllerSettingsOut,
    summary="Controller $ settings",
    errors=(503,),
)
async def get_settings(request: web.Request) -> dict[str, float]:
    return request.app[MACHINE].controller_settings()


@routes.put(
    "/machine/settings",
    role=Role.admin,
    body=ControllerSettings,
    response=ControllerSettingsOut,
    summary="Write controller $ settings",
    errors=BUSY,
)
async def put_settings(request: web.Request, body: ControllerSettings) -> dict[str, float]:
    await _audit(request, "machine_settings", {"values": body.root})
    return await request.app[MACHINE].write_settings(body.root)
