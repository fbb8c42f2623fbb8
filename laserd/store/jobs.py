"""Typed queries on the ``jobs`` table (no business rules: those live in laserd.jobs)."""

from __future__ import annotations

from typing import Any

import aiosqlite

from laserd.db import count_rows, utcnow

ACTIVE_STATES = ("queued", "waiting_start", "running", "paused")
COLUMNS = (
    "id, file_id, user_id, file_name, state, lines_total, lines_sent, lines_acked, created_at,"
    " started_at, finished_at, elapsed_s, error, pause_reason, updated_at, source, peer,"
    " end_reason"
)


def _row(row: aiosqlite.Row | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


async def insert(
    conn: aiosqlite.Connection,
    *,
    file_id: int | None,
    user_id: int | None,
    file_name: str,
    lines_total: int,
    source: str = "web",
    peer: str | None = None,
    state: str = "queued",
) -> dict[str, Any]:
    now = utcnow()
    started = now if state == "running" else None
    cur = await conn.execute(
        "INSERT INTO jobs (file_id, user_id, file_name, state, lines_total, created_at,"
        " updated_at, source, peer, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (file_id, user_id, file_name, state, lines_total, now, now, source, peer, started),
    )
    job = await get(conn, int(cur.lastrowid or 0))
    assert job is not None
    return job


async def get(conn: aiosqlite.Connection, job_id: int) -> dict[str, Any] | None:
    async with conn.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)) as cur:
        return _row(await cur.fetchone())


async def update(conn: aiosqlite.Connection, job_id: int, **fields: Any) -> None:
    allowed = {
        "state",
        "lines_sent",
        "lines_acked",
        "started_at",
        "finished_at",
        "elapsed_s",
        "error",
        "pause_reason",
        "lines_total",
        "end_reason",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown job fields: {sorted(unknown)}")
    fields["updated_at"] = utcnow()
    sets = ", ".join(f"{k} = ?" for k in fields)
    await conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))


async def list_jobs(
    conn: aiosqlite.Connection,
    *,
    user_id: int | None,
    states: tuple[str, ...] | None = None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where: list[str] = []
    args: list[Any] = []
    if user_id is not None:
        where.append("user_id = ?")
        args.append(user_id)
    if states:
        where.append(f"state IN ({', '.join('?' * len(states))})")
        args.extend(states)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = await count_rows(conn, f"SELECT count(*) FROM jobs {clause}", args)
    async with conn.execute(
        f"SELECT {COLUMNS} FROM jobs {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ) as cur:
        rows = [dict(r) for r in await cur.fetchall()]
    return rows, total


async def mark_interrupted(conn: aiosqlite.Connection) -> list[int]:
    """Jobs left active by a crash or power loss: ``interrupted``; nothing resumes by itself."""
    async with conn.execute(
        f"SELECT id FROM jobs WHERE state IN ({', '.join('?' * len(ACTIVE_STATES))})",
        ACTIVE_STATES,
    ) as cur:
        ids = [int(r[0]) for r in await cur.fetchall()]
    if ids:
        now = utcnow()
        await conn.execute(
            f"UPDATE jobs SET state = 'interrupted', finished_at = coalesce(finished_at, ?),"
            f" error = coalesce(error, 'laserd stopped while the job was active'), updated_at = ?"
            f" WHERE id IN ({', '.join('?' * len(ids))})",
            (now, now, *ids),
        )
    return ids


async def file_in_use(conn: aiosqlite.Connection, file_id: int) -> bool:
    async with conn.execute(
        f"SELECT 1 FROM jobs WHERE file_id = ? AND state IN ({', '.join('?' * len(ACTIVE_STATES))})"
        " LIMIT 1",
        (file_id, *ACTIVE_STATES),
    ) as cur:
        return await cur.fetchone() is not None
