"""Cleanup contexts of the file library and its processing queue (the wiring: aiohttp here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from laserd.grbl.controller import SettingsChanged
from laserd.keys import DB, HUB, LIBRARY, LINK, PROCESSING, SETTINGS
from laserd.library.processing import Processing
from laserd.library.service import FileLibrary


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
    link reads on every connect (and keeps when ``$N=v`` is written), so estimates use the
    machine's real limits. The link reports them as :class:`SettingsChanged` on the bus."""
    service, link, hub = app[PROCESSING], app[LINK], app[HUB]

    def on_settings(change: SettingsChanged) -> None:
        service.controller_settings(dict(change.settings))

    hub.on(SettingsChanged, on_settings)
    if link.settings:  # read before this context subscribed
        service.controller_settings(link.settings)
    try:
        yield
    finally:
        hub.off(SettingsChanged, on_settings)
