"""Typed queries on ``materials``. Visibility and role rules live in the API layer."""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from laserd.db import count_rows, utcnow

COLUMNS = (
    "id, owner_id, shared, name, thickness_mm, description, laser_type, settings_json,"
    " starter_key, created_at, updated_at"
)
UPDATABLE = frozenset({"name", "thickness_mm", "description", "laser_type", "settings", "shared"})
#: Thickness filter tolerance: 3 and 3.0001 mean the same sheet.
THICKNESS_TOLERANCE_MM = 0.005


def decode(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["shared"] = bool(out["shared"])
    out["settings"] = json.loads(out.pop("settings_json") or "{}")
    return out


async def get(conn: aiosqlite.Connection, material_id: int) -> dict[str, Any] | None:
    async with conn.execute(f"SELECT {COLUMNS} FROM materials WHERE id = ?", (material_id,)) as cur:
        row = await cur.fetchone()
    return decode(row) if row is not None else None


async def get_many(conn: aiosqlite.Connection, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    async with conn.execute(
        f"SELECT {COLUMNS} FROM materials WHERE id IN ({marks})", tuple(ids)
    ) as cur:
        return {r["id"]: decode(r) for r in await cur.fetchall()}


def _insert_args(
    *,
    owner_id: int | None,
    shared: bool,
    name: str,
    thickness_mm: float | None,
    description: str,
    laser_type: str | None,
    settings: dict[str, Any],
    starter_key: str | None,
    now: str,
) -> tuple[Any, ...]:
    return (
        owner_id,
        int(shared),
        name,
        thickness_mm,
        description,
        laser_type,
        json.dumps(settings, separators=(",", ":")),
        starter_key,
        now,
        now,
    )


_INSERT = (
    "INSERT INTO materials (owner_id, shared, name, thickness_mm, description, laser_type,"
    " settings_json, starter_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def insert(conn: aiosqlite.Connection, **fields: Any) -> dict[str, Any]:
    fields.setdefault("starter_key", None)
    cur = await conn.execute(_INSERT, _insert_args(now=utcnow(), **fields))
    row = await get(conn, int(cur.lastrowid or 0))
    assert row is not None
    return row


async def insert_many(conn: aiosqlite.Connection, items: list[dict[str, Any]]) -> int:
    """Many materials in one statement batch (an import): all or nothing."""
    now = utcnow()
    args = [_insert_args(now=now, **{"starter_key": None, **item}) for item in items]
    await conn.execute("SAVEPOINT materials_import")
    try:
        await conn.executemany(_INSERT, args)
    except BaseException:
        await conn.execute("ROLLBACK TO materials_import")
        await conn.execute("RELEASE materials_import")
        raise
    await conn.execute("RELEASE materials_import")
    return len(args)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _visible_where(
    viewer_id: int, q: str | None, thickness_mm: float | None
) -> tuple[str, list[Any]]:
    where = ["(shared = 1 OR owner_id = ?)"]
    args: list[Any] = [viewer_id]
    if q:
        where.append("(name LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')")
        pattern = f"%{_escape_like(q)}%"
        args += [pattern, pattern]
    if thickness_mm is not None:
        where.append("abs(thickness_mm - ?) <= ?")
        args += [thickness_mm, THICKNESS_TOLERANCE_MM]
    return "WHERE " + " AND ".join(where), args


async def page_visible(
    conn: aiosqlite.Connection,
    *,
    viewer_id: int,
    q: str | None,
    thickness_mm: float | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """Shared entries and the viewer's own, by name then thickness (no thickness first)."""
    where, args = _visible_where(viewer_id, q, thickness_mm)
    total = await count_rows(conn, f"SELECT count(*) FROM materials {where}", args)
    async with conn.execute(
        f"SELECT {COLUMNS} FROM materials {where}"
        " ORDER BY name COLLATE NOCASE, thickness_mm IS NOT NULL, thickness_mm, id"
        " LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ) as cur:
        rows = [decode(r) for r in await cur.fetchall()]
    return rows, total


async def all_visible(conn: aiosqlite.Connection, viewer_id: int) -> list[dict[str, Any]]:
    rows, _ = await page_visible(
        conn, viewer_id=viewer_id, q=None, thickness_mm=None, limit=-1, offset=0
    )
    return rows


async def update(conn: aiosqlite.Connection, material_id: int, changes: dict[str, Any]) -> None:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    sets: list[str] = []
    args: list[Any] = []
    for key, value in changes.items():
        if key == "settings":
            sets.append("settings_json = ?")
            args.append(json.dumps(value, separators=(",", ":")))
        elif key == "shared":
            sets.append("shared = ?")
            args.append(int(value))
        else:
            sets.append(f"{key} = ?")
            args.append(value)
    sets.append("updated_at = ?")
    args.append(utcnow())
    await conn.execute(f"UPDATE materials SET {', '.join(sets)} WHERE id = ?", (*args, material_id))


async def delete(conn: aiosqlite.Connection, material_id: int) -> None:
    await conn.execute("DELETE FROM materials WHERE id = ?", (material_id,))


async def starter_keys(conn: aiosqlite.Connection) -> set[str]:
    async with conn.execute(
        "SELECT starter_key FROM materials WHERE starter_key IS NOT NULL"
    ) as cur:
        return {r[0] for r in await cur.fetchall()}


async def starter_seeded(conn: aiosqlite.Connection) -> bool:
    async with conn.execute("SELECT starter_seeded_at FROM material_library WHERE id = 1") as cur:
        row = await cur.fetchone()
    return row is not None and row[0] is not None


async def mark_starter_seeded(conn: aiosqlite.Connection) -> None:
    await conn.execute(
        "UPDATE material_library SET starter_seeded_at = ? WHERE id = 1", (utcnow(),)
    )


# ---------------------------------------------------------------------------- test grids


async def insert_grid(
    conn: aiosqlite.Connection,
    *,
    file_id: int,
    operation: str,
    request: dict[str, Any],
    cells: list[dict[str, Any]],
) -> None:
    await conn.execute(
        "INSERT INTO test_grids (file_id, operation, request_json, cells_json, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (file_id, operation, json.dumps(request), json.dumps(cells), utcnow()),
    )


async def get_grid(conn: aiosqlite.Connection, file_id: int) -> dict[str, Any] | None:
    async with conn.execute(
        "SELECT file_id, operation, request_json, cells_json, created_at FROM test_grids"
        " WHERE file_id = ?",
        (file_id,),
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    return {
        "file_id": row["file_id"],
        "operation": row["operation"],
        "request": json.loads(row["request_json"]),
        "cells": json.loads(row["cells_json"]),
        "created_at": row["created_at"],
    }
