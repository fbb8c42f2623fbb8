"""Typed queries on the ``files`` table.

Where a file's artefacts live is decided in one place, :class:`laserd.settings.Settings`:
the upload at ``uploads_dir / stored_name``, the streamable G-code at
``settings.gcode_path(id)`` and the previews at ``settings.preview_path(id[, thumb=True])``.
"""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from laserd.db import count_rows, utcnow

COLUMNS = (
    "id, project_id, owner_id, name, kind, size, sha256, stored_name, status, progress, error,"
    " stats_json, laser_json, warnings_json, layers_json, placement_json, created_at,"
    " updated_at, processed_at"
)
#: Job states in which a job still needs its file.
ACTIVE_JOB_STATES = ("queued", "waiting_start", "running", "paused")


def decode(row: aiosqlite.Row | dict[str, Any]) -> dict[str, Any]:
    """A row with its JSON columns decoded (``stats``, ``laser``)."""
    out = dict(row)
    out["stats"] = json.loads(out.pop("stats_json") or "null")
    out["laser"] = json.loads(out.pop("laser_json") or "null")
    out["warnings"] = json.loads(out.pop("warnings_json", None) or "[]")
    out["layers"] = json.loads(out.pop("layers_json", None) or "null")
    out["placement"] = json.loads(out.pop("placement_json", None) or "null")
    return out


async def get(conn: aiosqlite.Connection, file_id: int) -> dict[str, Any] | None:
    async with conn.execute(f"SELECT {COLUMNS} FROM files WHERE id = ?", (file_id,)) as cur:
        row = await cur.fetchone()
    return decode(row) if row is not None else None


async def insert(
    conn: aiosqlite.Connection,
    *,
    project_id: int,
    owner_id: int,
    name: str,
    kind: str,
    size: int,
    sha256: str,
    stored_name: str,
    laser: dict[str, Any],
    layers: list[dict[str, Any]] | None = None,
    placement: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A new upload, ``pending`` processing with a snapshot of its project's laser settings
    (and, for a design made by laserd itself such as a material test grid, its layer settings
    and placement from the start)."""
    now = utcnow()
    cur = await conn.execute(
        "INSERT INTO files (project_id, owner_id, name, kind, size, sha256, stored_name, status,"
        " progress, laser_json, layers_json, placement_json, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?, ?)",
        (
            project_id, owner_id, name, kind, size, sha256, stored_name, json.dumps(laser),
            None if layers is None else json.dumps(layers),
            None if placement is None else json.dumps(placement),
            now, now,
        ),
    )  # fmt: skip
    row = await get(conn, int(cur.lastrowid or 0))
    assert row is not None
    return row


async def page_for_project(
    conn: aiosqlite.Connection, project_id: int, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    total = await count_rows(conn, "SELECT count(*) FROM files WHERE project_id = ?", (project_id,))
    async with conn.execute(
        f"SELECT {COLUMNS} FROM files WHERE project_id = ? ORDER BY id DESC LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    ) as cur:
        rows = [decode(r) for r in await cur.fetchall()]
    return rows, total


async def in_project(conn: aiosqlite.Connection, project_id: int) -> list[dict[str, Any]]:
    async with conn.execute(
        f"SELECT {COLUMNS} FROM files WHERE project_id = ?", (project_id,)
    ) as cur:
        return [decode(r) for r in await cur.fetchall()]


async def owned_by(conn: aiosqlite.Connection, owner_id: int) -> list[dict[str, Any]]:
    async with conn.execute(f"SELECT {COLUMNS} FROM files WHERE owner_id = ?", (owner_id,)) as cur:
        return [decode(r) for r in await cur.fetchall()]


async def unfinished_ids(conn: aiosqlite.Connection) -> list[int]:
    """Files a crash or restart left ``pending`` or ``processing``, oldest first."""
    async with conn.execute(
        "SELECT id FROM files WHERE status IN ('pending', 'processing') ORDER BY id"
    ) as cur:
        return [int(r[0]) for r in await cur.fetchall()]


async def mark_pending(
    conn: aiosqlite.Connection,
    file_id: int,
    laser: dict[str, Any] | None = None,
    *,
    layers: list[dict[str, Any]] | None = None,
    placement: dict[str, Any] | None = None,
) -> None:
    """Queue (again): clears the previous result; a new laser snapshot, layer settings or
    placement when given (one statement: a reader never sees the settings without the
    pending status)."""
    sets = "status = 'pending', progress = 0, error = NULL, updated_at = ?"
    args: list[Any] = [utcnow()]
    for column, value in (("laser_json", laser), ("layers_json", layers),
                          ("placement_json", placement)):  # fmt: skip
        if value is not None:
            sets += f", {column} = ?"
            args.append(json.dumps(value))
    await conn.execute(f"UPDATE files SET {sets} WHERE id = ?", (*args, file_id))


async def mark_processing(conn: aiosqlite.Connection, file_id: int) -> None:
    await conn.execute(
        "UPDATE files SET status = 'processing', progress = 0, error = NULL, updated_at = ?"
        " WHERE id = ?",
        (utcnow(), file_id),
    )


async def set_progress(conn: aiosqlite.Connection, file_id: int, progress: float) -> None:
    await conn.execute(
        "UPDATE files SET progress = ? WHERE id = ? AND status = 'processing'",
        (progress, file_id),
    )


async def mark_done(
    conn: aiosqlite.Connection,
    file_id: int,
    *,
    stats: dict[str, Any],
    warnings: list[str],
    layers: list[dict[str, Any]] | None = None,
) -> None:
    """Ready with its result; a design's ``layers`` (defaults merged with the stored ones)."""
    now = utcnow()
    await conn.execute(
        "UPDATE files SET status = 'ready', progress = 1, error = NULL, stats_json = ?,"
        " warnings_json = ?, layers_json = coalesce(?, layers_json), updated_at = ?,"
        " processed_at = ? WHERE id = ?",
        (json.dumps(stats), json.dumps(warnings),
         json.dumps(layers) if layers is not None else None, now, now, file_id),
    )  # fmt: skip



async def mark_failed(conn: aiosqlite.Connection, file_id: int, error: str) -> None:
    now = utcnow()
    await conn.execute(
        "UPDATE files SET status = 'failed', progress = 0, error = ?, stats_json = NULL,"
        " warnings_json = NULL, updated_at = ?, processed_at = ? WHERE id = ?",
        (error, now, now, file_id),
    )


async def used_by_active_job(conn: aiosqlite.Connection, file_ids: list[int]) -> bool:
    if not file_ids:
        return False
    marks = ", ".join("?" * len(file_ids))
    states = ", ".join("?" * len(ACTIVE_JOB_STATES))
    async with conn.execute(
        f"SELECT 1 FROM jobs WHERE file_id IN ({marks}) AND state IN ({states}) LIMIT 1",
        (*file_ids, *ACTIVE_JOB_STATES),
    ) as cur:
        return await cur.fetchone() is not None


async def delete(conn: aiosqlite.Connection, file_id: int) -> None:
    await conn.execute("DELETE FROM files WHERE id = ?", (file_id,))


async def all_refs(conn: aiosqlite.Connection) -> tuple[set[str], set[int]]:
    """Every stored upload name and every file id: what may exist on disk."""
    async with conn.execute("SELECT id, stored_name FROM files") as cur:
        rows = await cur.fetchall()
    return {r[1] for r in rows}, {int(r[0]) for r in rows}


async def ready_estimates(conn: aiosqlite.Connection) -> list[tuple[int, dict[str, Any] | None]]:
    """``(id, stats.estimate_settings)`` of every ready file (what re-estimation checks)."""
    async with conn.execute("SELECT id, stats_json FROM files WHERE status = 'ready'") as cur:
        rows = await cur.fetchall()
    out: list[tuple[int, dict[str, Any] | None]] = []
    for file_id, raw in rows:
        stats = json.loads(raw or "null") or {}
        out.append((int(file_id), stats.get("estimate_settings")))
    return out


async def update_estimate(
    conn: aiosqlite.Connection, file_id: int, fields: dict[str, Any]
) -> bool:
    """Merge new estimate fields into a ready file's stats; False if it is no longer ready
    (re-processed or deleted meanwhile: its new stats come with their own estimate)."""
    async with conn.execute(
        "SELECT stats_json FROM files WHERE id = ? AND status = 'ready'", (file_id,)
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return False
    stats = json.loads(row[0] or "null") or {}
    stats.update(fields)
    cur2 = await conn.execute(
        "UPDATE files SET stats_json = ? WHERE id = ? AND status = 'ready' AND stats_json = ?",
        (json.dumps(stats), file_id, row[0]),
    )
    return cur2.rowcount == 1
