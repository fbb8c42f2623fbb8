"""Cleanup contexts of the file library and its processing queue (the wiring: aiohttp here)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from laserd.keys import DB, HUB, LIBRARY, LINK, PROCESSING, SETTINGS
from laserd.library.processing import Processing
from laserd.library.service import FileLibrary

#: How often the controller's settings are compared with those the estimates used.
SETTINGS_POLL_S = 2.0


async def processing_ctx(app: web.Application) -> AsyncIterator[None]:
    """The processing queue and the library that owns the files' life cycle (after the
    database, before the job runner, which shares the library's lock)."""
    processing = Processing(app[SETTINGS], app[DB], app[HUB])
    app[PROCESSING] = processing
    app[LIBRARY] = FileLibrary(app[SETTINGS], app[DB], processing)
    await processing.start()
    try:
        yield
    finally:
        await processing.close()


async def estimates_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context (after the link): follows the controller's ``$$`` settings, which the
    link reads on every connect, so estimates use the machine's real limits."""
    service, link = app[PROCESSING], app[LINK]

    async def watch() -> None:
        while True:
            if link.connected:
                service.controller_settings(link.settings)
            await asyncio.sleep(SETTINGS_POLL_S)

    task = asyncio.create_task(watch(), name="estimate-settings-watch")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
