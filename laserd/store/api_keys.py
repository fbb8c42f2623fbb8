"""Typed queries on ``api_keys``. Only a hash of each key is stored, never the key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from laserd.db import utcnow

COLUMNS = (
    "id, user_id, name, prefix, key_hash, role, created_at, expires_at, last_used_at, revoked_at"
)


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: int
    user_id: int
    name: str
    prefix: str
    key_hash: str
    role: str
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None

    @classmethod
    def from_row(cls, row: Any) -> ApiKeyRow:
        return cls(**{name: row[name] for name in cls.__slots__})


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """An API key with what its owner looks like now (role and status can change after)."""

    key: ApiKeyRow
    username: str
    owner_role: str
    owner_status: str


async def insert(
    conn: aiosqlite.Connection,
    *,
    user_id: int,
    name: str,
    prefix: str,
    key_hash: str,
    role: str,
    expires_at: str | None,
) -> ApiKeyRow:
    async with conn.execute(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash, role, created_at, expires_at)"
        f" VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}",
        (user_id, name, prefix, key_hash, role, utcnow(), expires_at),
    ) as cur:
        row = await cur.fetchone()
    assert row is not None
    return ApiKeyRow.from_row(row)


async def by_hash(conn: aiosqlite.Connection, key_hash: str) -> KeyOwner | None:
    cols = ", ".join(f"k.{c.strip()}" for c in COLUMNS.split(","))
    async with conn.execute(
        f"SELECT {cols}, u.username AS username, u.role AS owner_role, u.status AS owner_status"
        " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
        (key_hash,),
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    return KeyOwner(
        ApiKeyRow.from_row(row), row["username"], row["owner_role"], row["owner_status"]
    )


async def list_for_user(
    conn: aiosqlite.Connection, user_id: int, *, limit: int, offset: int
) -> tuple[list[ApiKeyRow], int]:
    """The user's keys that are not revoked, newest first."""
    async with conn.execute(
        "SELECT COUNT(*) FROM api_keys WHERE user_id = ? AND revoked_at IS NULL", (user_id,)
    ) as cur:
        total = await cur.fetchone()
    async with conn.execute(
        f"SELECT {COLUMNS} FROM api_keys WHERE user_id = ? AND revoked_at IS NULL"
        " ORDER BY id DESC LIMIT ? OFFSET ?",
        (user_id, limit, offset),
    ) as cur:
        rows = await cur.fetchall()
    return [ApiKeyRow.from_row(r) for r in rows], int(total[0]) if total else 0


async def revoke(conn: aiosqlite.Connection, key_id: int, user_id: int) -> ApiKeyRow | None:
    """Revoke one of the user's live keys; None when there is no such key for that user."""
    async with conn.execute(
        f"UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL"
        f" RETURNING {COLUMNS}",
        (utcnow(), key_id, user_id),
    ) as cur:
        row = await cur.fetchone()
    return ApiKeyRow.from_row(row) if row else None


async def revoke_all(conn: aiosqlite.Connection, user_id: int) -> list[ApiKeyRow]:
    """Revoke every live key of the user; the keys revoked."""
    async with conn.execute(
        f"UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
        f" RETURNING {COLUMNS}",
        (utcnow(), user_id),
    ) as cur:
        rows = await cur.fetchall()
    return [ApiKeyRow.from_row(r) for r in rows]


async def touch(conn: aiosqlite.Connection, key_id: int) -> None:
    await conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (utcnow(), key_id))
