"""Job routes: start, list, show, pause, resume, cancel."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from laserd import errors
from laserd.api.files_access import readable_file
from laserd.api.routing import ApiRoutes, path_id, principal
from laserd.auth.principal import Role
from laserd.keys import JOBS
from laserd.schemas import Page
from laserd.schemas.machine import JobCreate, JobOut, JobsQuery

routes = ApiRoutes("jobs")
ACTIVE = ("queued", "waiting_start", "running", "paused")


@routes.post(
    "/jobs",
    role=Role.user,
    body=JobCreate,
    response=JobOut,
    status=201,
    summary="Run a ready file",
    errors=(404, 409, 503),
)
async def create_job(request: web.Request, body: JobCreate) -> dict[str, Any]:
    """409 ``machine_busy`` / ``interlock_open`` / ``machine_alarm``; 503 when disconnected."""
    file = await readable_file(request, body.file_id)
    return await request.app[JOBS].submit(file, principal(request))


@routes.get(
    "/jobs",
    role=Role.guest,
    query=JobsQuery,
    response=Page[JobOut],
    summary="Job history (own; all for admins; guests see the active one)",
)
async def list_jobs(request: web.Request, query: JobsQuery) -> dict[str, Any]:
    who = principal(request)
    states: tuple[str, ...] | None = (query.state,) if query.state else None
    user_id: int | None = None if who.is_admin else who.user_id
    page: dict[str, Any] = {"items": [], "total": 0, "limit": query.limit, "offset": query.offset}
    if who.role is Role.guest:  # guests see the active job of anyone, and no history
        user_id = None
        states = tuple(s for s in (states or ACTIVE) if s in ACTIVE)
        if not states:
            return page
    page["items"], page["total"] = await request.app[JOBS].list(
        user_id=user_id, limit=query.limit, offset=query.offset, states=states
    )
    return page


async def _visible(request: web.Request) -> dict[str, Any]:
    who = principal(request)
    job = await request.app[JOBS].get(path_id(request))
    if job is None:
        raise errors.NotFound("No such job.")
    if who.is_admin or job["user_id"] == who.user_id:
        return job
    if who.role is Role.guest and job["state"] in ACTIVE:
        return job
    raise errors.NotFound("No such job.")


@routes.get("/jobs/{id}", role=Role.guest, response=JobOut, summary="One job")
async def get_job(request: web.Request) -> dict[str, Any]:
    return await _visible(request)


@routes.post(
    "/jobs/{id}/pause",
    role=Role.user,
    response=JobOut,
    summary="Pause (feed hold)",
    errors=(409, 503),
)
async def pause_job(request: web.Request) -> dict[str, Any]:
    await _visible(request)
    return await request.app[JOBS].pause(path_id(request), principal(request))


@routes.post(
    "/jobs/{id}/resume",
    role=Role.user,
    response=JobOut,
    summary="Resume (refused while an interlock is open or within the resume delay)",
    errors=(409, 503),
)
async def resume_job(request: web.Request) -> dict[str, Any]:
    await _visible(request)
    return await request.app[JOBS].resume(path_id(request), principal(request))


@routes.post(
    "/jobs/{id}/cancel",
    role=Role.user,
    response=JobOut,
    summary="Cancel: stop motion, laser off",
    errors=(409, 503),
)
async def cancel_job(request: web.Request) -> dict[str, Any]:
    await _visible(request)
    return await request.app[JOBS].cancel(path_id(request), principal(request))
