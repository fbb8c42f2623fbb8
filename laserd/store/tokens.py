"""Typed queries on ``user_tokens``: single-use password-reset and email-verification tokens.

Only a hash of each token is stored. Consumption is one ``UPDATE … RETURNING`` guarded by
``used_at IS NULL`` and the expiry, so a token can be spent exactly once even under a race.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from laserd.db import utcnow

COLUMNS = "id, user_id, purpose, token_hash, email, created_at, expires_at, used_at"


@dataclass(frozen=True, slots=True)
class UserTokenRow:
    id: int
    user_id: int
    purpose: str
    token_hash: str
    email: str
    created_at: str
    expires_at: str
    used_at: str | None

    @classmethod
    def from_row(cls, row: Any) -> UserTokenRow:
        return cls(**{name: row[name] for name in cls.__slots__})


async def insert(
    conn: aiosqlite.Connection,
    *,
    user_id: int,
    purpose: str,
    token_hash: str,
    email: str,
    expires_at: str,
) -> None:
    await conn.execute(
        "INSERT INTO user_tokens (user_id, purpose, token_hash, email, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (user_id, purpose, token_hash, email, utcnow(), expires_at),
    )


async def consume(
    conn: aiosqlite.Connection, *, purpose: str, token_hash: str
) -> UserTokenRow | None:
    """Mark the token used and return it; None when unknown, spent or expired."""
    now = utcnow()
    async with conn.execute(
        f"UPDATE user_tokens SET used_at = ? WHERE token_hash = ? AND purpose = ?"
        f" AND used_at IS NULL AND expires_at > ? RETURNING {COLUMNS}",
        (now, token_hash, purpose, now),
    ) as cur:
        row = await cur.fetchone()
    return UserTokenRow.from_row(row) if row else None


async def spend_all(conn: aiosqlite.Connection, user_id: int, purpose: str | None) -> int:
    """Spend every outstanding token of this purpose (an older reset link dies with a newer),
    or of every purpose when ``purpose`` is None (the email or the password changed)."""
    async with conn.execute(
        "UPDATE user_tokens SET used_at = ? WHERE user_id = ? AND used_at IS NULL"
        " AND (? IS NULL OR purpose = ?)",
        (utcnow(), user_id, purpose, purpose),
    ) as cur:
        return cur.rowcount


async def purge_old(conn: aiosqlite.Connection, before: str) -> int:
    async with conn.execute("DELETE FROM user_tokens WHERE expires_at < ?", (before,)) as cur:
        return cur.rowcount
