"""Object-level access to files shared by the routes that take a ``file_id``.

Another user's file answers 404 (no existence leak); admins see every file; guests none.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from laserd import errors
from laserd.api.routing import principal
from laserd.keys import DB
from laserd.store import files as files_store


async def readable_file(request: web.Request, file_id: int) -> dict[str, Any]:
    who = principal(request)
    file = await files_store.get(request.app[DB], file_id)
    if file is None or (not who.is_admin and file["owner_id"] != who.user_id):
        raise errors.NotFound("No such file.")
    return file
