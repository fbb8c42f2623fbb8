"""Cleanup context of the GRBL bridge: after the job runner (it shares its machine claim),
so at stop it exits first and ends a running session before the job runner and the link."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from laserd.bridge.server import Bridge
from laserd.keys import AUDIT, BRIDGE, DB, HUB, JOBS, LINK, SAFETY, SETTINGS


async def bridge_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.bridge.enabled:
        yield
        return
    jobs = app[JOBS]
    bridge = Bridge(
        settings.bridge,
        host=settings.server.host,
        link=app[LINK],
        safety=app[SAFETY],
        use=jobs.use,
        conn=app[DB],
        hub=app[HUB],
        audit=app.get(AUDIT),
        job_active=lambda: jobs.active is not None,
    )
    await bridge.start()
    app[BRIDGE] = bridge
    try:
        yield
    finally:
        await bridge.close()
