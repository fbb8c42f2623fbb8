"""The app factory: middlewares, ordered cleanup contexts and routes.

Cleanup contexts enter in the order of :data:`CONTEXTS` and exit in reverse, so at shutdown
the job runner stops the laser before the link closes, and the link closes before the safety
outputs are released and the database is closed. The safety outputs are set to their safe
state before the controller is even opened.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from laserd import db as dbmod
from laserd.api import auth as auth_api
from laserd.api import bridge as bridge_api
from laserd.api import (
    debug,
    debug_loop,
    debug_metrics,
    interlocks,
    jobs,
    machine,
    setup,
    system,
    users,
    ws,
)
from laserd.api import files as files_api
from laserd.api import materials as materials_api
from laserd.api import projects as projects_api
from laserd.api.middleware import MIDDLEWARES
from laserd.api.routing import ApiRoutes, register
from laserd.auth_ctx import auth_ctx
from laserd.bridge.bridge_ctx import bridge_ctx
from laserd.bridge.discovery_ctx import discovery_ctx
from laserd.events import EventHub
from laserd.hardware import Hardware, hardware_from_settings
from laserd.keys import DB, HARDWARE, HUB, SERVER_SECRET, SETTINGS, STARTED_MONO
from laserd.library.processing_ctx import estimates_ctx, processing_ctx
from laserd.machine_ctx import jobs_ctx, link_ctx, safety_ctx
from laserd.materials_ctx import materials_ctx
from laserd.settings import Settings, ensure_state_dirs, server_secret
from laserd.webui import add_routes as add_web_routes
from laserd.webui import find_web_dir

log = logging.getLogger(__name__)

Context = Callable[[web.Application], AsyncIterator[None]]


async def state_ctx(app: web.Application) -> AsyncIterator[None]:
    """State folders, the server secret and the event hub's loop binding."""
    settings = app[SETTINGS]
    ensure_state_dirs(settings)
    app[SERVER_SECRET] = server_secret(settings)
    app[HUB].bind_loop(asyncio.get_running_loop())
    yield
    app[HUB].close()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    conn = await dbmod.open_database(app[SETTINGS].db_path)
    app[DB] = conn
    try:
        yield
    finally:
        try:
            await conn.execute("PRAGMA optimize")
        finally:
            await conn.close()


#: Services in start order. Later layers add theirs here, in the place their dependencies need.
CONTEXTS: list[Context] = [
    state_ctx,
    safety_ctx,  # laser-enable output off before anything else, the controller included
    database_ctx,
    materials_ctx,  # the starter material library, once in the database's life
    processing_ctx,  # the file library and its processing pool; leftovers are queued again
    auth_ctx,
    link_ctx,
    estimates_ctx,  # the controller's $$ settings → time estimates of ready files
    discovery_ctx,  # mDNS: announced in the background, withdrawn at stop
    jobs_ctx,  # stops a running job and the laser
    bridge_ctx,  # exits first: ends a bridge session (laser off) before the job runner
]

#: Route tables of every API module.
ROUTE_TABLES: list[ApiRoutes] = [
    system.routes,
    debug_loop.routes,
    setup.routes,
    auth_api.routes,
    users.routes,
    projects_api.routes,
    files_api.routes,
    materials_api.routes,
    debug.routes,
    debug_metrics.routes,
    machine.routes,
    jobs.routes,
    interlocks.routes,
    bridge_api.routes,
    ws.routes,
]


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = "laserd"


def create_app(settings: Settings, hardware: Hardware | None = None) -> web.Application:
    app = web.Application(
        middlewares=list(MIDDLEWARES),
        client_max_size=settings.server.max_json_kb * 1024,
    )
    app[SETTINGS] = settings
    app[HARDWARE] = hardware if hardware is not None else hardware_from_settings(settings)
    app[HUB] = EventHub()
    app[STARTED_MONO] = time.monotonic()
    app.cleanup_ctx.extend(CONTEXTS)
    register(app, ROUTE_TABLES, debug=settings.server.debug)
    web_dir = find_web_dir()
    if web_dir is not None:
        add_web_routes(app, web_dir)
    else:
        log.warning("web/ not found: the browser UI is not served")
    app.on_response_prepare.append(_server_header)
    app[ws.OPEN_SOCKETS] = weakref.WeakSet()
    app[ws.SOCKET_COUNTS] = ws.SocketCounts()
    app.on_shutdown.append(ws.close_all)
    return app
