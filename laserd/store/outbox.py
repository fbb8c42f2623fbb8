"""Typed queries on ``outbox``: every mail message laserd sends, or would send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from laserd.db import utcnow

COLUMNS = "id, created_at, to_addr, subject, body, kind, sent_at, transport, error"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    created_at: str
    to_addr: str
    subject: str
    body: str
    kind: str
    sent_at: str | None
    transport: str
    error: str | None

    @classmethod
    def from_row(cls, row: Any) -> OutboxRow:
        return cls(**{name: row[name] for name in cls.__slots__})


async def insert(
    conn: aiosqlite.Connection, *, to_addr: str, subject: str, body: str, kind: str, transport: str
) -> int:
    async with conn.execute(
        "INSERT INTO outbox (created_at, to_addr, subject, body, kind, transport)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (utcnow(), to_addr, subject, body, kind, transport),
    ) as cur:
        return int(cur.lastrowid or 0)


async def mark(conn: aiosqlite.Connection, message_id: int, *, error: str | None) -> None:
    """Record the outcome: sent (``error`` None) or the delivery error."""
    await conn.execute(
        "UPDATE outbox SET sent_at = ?, error = ? WHERE id = ?",
        (utcnow() if error is None else None, error, message_id),
    )


async def list_page(
    conn: aiosqlite.Connection, *, limit: int, offset: int, to_addr: str | None = None
) -> tuple[list[OutboxRow], int]:
    clause, args = ("", []) if not to_addr else (" WHERE to_addr = ? COLLATE NOCASE", [to_addr])
    async with conn.execute(f"SELECT COUNT(*) FROM outbox{clause}", args) as cur:
        total = await cur.fetchone()
    async with conn.execute(
        f"SELECT {COLUMNS} FROM outbox{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ) as cur:
        rows = await cur.fetchall()
    return [OutboxRow.from_row(r) for r in rows], int(total[0]) if total else 0
