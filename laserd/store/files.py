"""Typed queries on the ``files`` table.

Where a file's artefacts live is decided in one place, :class:`laserd.settings.Settings`:
the upload at ``uploads_dir / stored_name``, the streamable G-code at
``settings.gcode_path(id)`` and the previews at ``settings.preview_path(id[, thumb=True])``.
"""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

COLUMNS = (
    "id, project_id, owner_id, name, kind, size, sha256, stored_name, status, progress, error,"
    " stats_json, laser_json, created_at, updated_at, processed_at"
)


def decode(row: aiosqlite.Row | dict[str, Any]) -> dict[str, Any]:
    """A row with its JSON columns decoded (``stats``, ``laser``)."""
    out = dict(row)
    out["stats"] = json.loads(out.pop("stats_json") or "null")
    out["laser"] = json.loads(out.pop("laser_json") or "null")
    return out


async def get(conn: aiosqlite.Connection, file_id: int) -> dict[str, Any] | None:
    async with conn.execute(f"SELECT {COLUMNS} FROM files WHERE id = ?", (file_id,)) as cur:
        row = await cur.fetchone()
    return decode(row) if row is not None else None
