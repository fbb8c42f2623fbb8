"""The material library's cleanup context: the starter library, once in the database's life.

Wiring (beside the other ``*_ctx.py``): :mod:`laserd.materials` itself never sees the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from laserd.keys import DB
from laserd.materials.starter import seed_if_new


async def materials_ctx(app: web.Application) -> AsyncIterator[None]:
    """Seeds the starter library at the first start (a cleanup context after the database)."""
    await seed_if_new(app[DB])
    yield
