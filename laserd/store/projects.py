"""Typed queries on ``projects``. Ownership rules live in the API layer, not here."""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from laserd.db import count_rows, utcnow

COLUMNS = "id, owner_id, name, description, laser_json, material_id, created_at, updated_at"
UPDATABLE = frozenset({"name", "description", "laser", "material_id"})


def decode(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["laser"] = json.loads(out.pop("laser_json") or "{}")
    return out


async def get(conn: aiosqlite.Connection, project_id: int) -> dict[str, Any] | None:
    async with conn.execute(f"SELECT {COLUMNS} FROM projects WHERE id = ?", (project_id,)) as cur:
        row = await cur.fetchone()
    return decode(row) if row is not None else None


async def insert(
    conn: aiosqlite.Connection,
    *,
    owner_id: int,
    name: str,
    description: str,
    laser: dict[str, Any],
) -> dict[str, Any]:
    now = utcnow()
    cur = await conn.execute(
        "INSERT INTO projects (owner_id, name, description, laser_json, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (owner_id, name, description, json.dumps(laser), now, now),
    )
    project = await get(conn, int(cur.lastrowid or 0))
    assert project is not None
    return project


async def page(
    conn: aiosqlite.Connection, *, owner_id: int | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Newest first; ``owner_id`` None lists everyone's (admins)."""
    where, args = ("WHERE owner_id = ?", (owner_id,)) if owner_id is not None else ("", ())
    total = await count_rows(conn, f"SELECT count(*) FROM projects {where}", args)
    async with conn.execute(
        f"SELECT {COLUMNS} FROM projects {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ) as cur:
        rows = [decode(r) for r in await cur.fetchall()]
    return rows, total


async def update(conn: aiosqlite.Connection, project_id: int, changes: dict[str, Any]) -> None:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    sets, args = [], []
    for key, value in changes.items():
        if key == "laser":
            sets.append("laser_json = ?")
            args.append(json.dumps(value))
        else:
            sets.append(f"{key} = ?")
            args.append(value)
    sets.append("updated_at = ?")
    args.append(utcnow())
    await conn.execute(f"UPDATE projects SET {', '.join(sets)} WHERE id = ?", (*args, project_id))


async def delete(conn: aiosqlite.Connection, project_id: int) -> None:
    await conn.execute("DELETE FROM projects WHERE id = ?", (project_id,))
