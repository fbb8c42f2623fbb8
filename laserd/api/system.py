"""System endpoints: health, the OpenAPI document and its offline docs page."""

from __future__ import annotations

import json
import time
from importlib import resources

from aiohttp import web

from laserd import __version__
from laserd.api.openapi import build_openapi
from laserd.api.routing import ApiRoutes
from laserd.auth.principal import Role
from laserd.db import integrity_ok
from laserd.keys import DB, DISCOVERY, LINK, ROUTE_SPECS, STARTED_MONO
from laserd.schemas import Health

routes = ApiRoutes("system")
DOCS_ASSETS = {"docs.js": "text/javascript", "docs.css": "text/css"}


@routes.get("/health", role=Role.public, response=Health, summary="Liveness and readiness")
async def health(request: web.Request) -> Health:
    """``degraded`` when the database check fails or the controller is not connected."""
    app = request.app
    try:
        db_ok = await integrity_ok(app[DB]) if _should_check_db(app) else True
    except Exception:
        db_ok = False
    link = app.get(LINK)
    machine = "disconnected" if link is None else str(link.state)
    return Health(
        status="ok" if db_ok and machine != "disconnected" else "degraded",
        version=__version__,
        uptime_s=round(time.monotonic() - app[STARTED_MONO], 3),
        db="ok" if db_ok else "error",
        machine=machine,
        host=_mdns_host(app),
    )


def _mdns_host(app: web.Application) -> str | None:
    discovery = app.get(DISCOVERY)
    return discovery.announcement.host if discovery is not None else None


_last_db_check: dict[int, float] = {}


def _should_check_db(app: web.Application) -> bool:
    """``quick_check`` costs a read of the file: run it at most every 30 s per app."""
    now = time.monotonic()
    last = _last_db_check.get(id(app))
    if last is not None and now - last < 30:
        return False
    _last_db_check[id(app)] = now
    return True


@routes.get(
    "/openapi.json",
    role=Role.public,
    summary="This API's OpenAPI 3.1 document",
    produces={"application/json": "the OpenAPI document"},
)
async def openapi_json(request: web.Request) -> web.Response:
    body = json.dumps(build_openapi(request.app[ROUTE_SPECS]), indent=1).encode()
    return web.Response(body=body, content_type="application/json", charset="utf-8")


@routes.get(
    "/docs",
    role=Role.public,
    summary="Interactive API documentation (served offline)",
    produces={"text/html": "the docs page"},
)
async def docs(request: web.Request) -> web.Response:
    page = resources.files("laserd.static").joinpath("docs.html").read_bytes()
    return web.Response(body=page, content_type="text/html", charset="utf-8")


@routes.get(
    "/docs/{asset}",
    role=Role.public,
    summary="Assets of the docs page",
    produces={"text/javascript": "script", "text/css": "style sheet"},
    errors=(404,),
)
async def docs_asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    if name not in DOCS_ASSETS:
        from laserd.errors import NotFound

        raise NotFound()
    body = resources.files("laserd.static").joinpath(name).read_bytes()
    return web.Response(
        body=body,
        content_type=DOCS_ASSETS[name],
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )
