"""Typed queries on ``logins``: one row per refresh-token family.

A row holds the login's random signing key and the hash of its one current refresh token.
Rotation is a compare-and-swap on that hash, so two racing refreshes cannot both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from laserd.db import utcnow

COLUMNS = (
    "id, user_id, signing_key, refresh_hash, created_at, last_used_at, expires_at, "
    "revoked_at, revoke_reason, client_ip, user_agent"
)


@dataclass(frozen=True, slots=True)
class LoginRow:
    id: str
    user_id: int
    signing_key: bytes
    refresh_hash: str
    created_at: str
    last_used_at: str
    expires_at: str
    revoked_at: str | None
    revoke_reason: str | None
    client_ip: str
    user_agent: str

    @classmethod
    def from_row(cls, row: Any) -> LoginRow:
        return cls(**{name: row[name] for name in cls.__slots__})


async def insert(
    conn: aiosqlite.Connection,
    *,
    login_id: str,
    user_id: int,
    signing_key: bytes,
    refresh_hash: str,
    expires_at: str,
    client_ip: str,
    user_agent: str,
) -> None:
    now = utcnow()
    await conn.execute(
        "INSERT INTO logins (id, user_id, signing_key, refresh_hash, created_at, last_used_at,"
        " expires_at, client_ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (login_id, user_id, signing_key, refresh_hash, now, now, expires_at, client_ip, user_agent),
    )


async def get(conn: aiosqlite.Connection, login_id: str) -> LoginRow | None:
    async with conn.execute(f"SELECT {COLUMNS} FROM logins WHERE id = ?", (login_id,)) as cur:
        row = await cur.fetchone()
    return LoginRow.from_row(row) if row else None


async def rotate(
    conn: aiosqlite.Connection, login_id: str, *, old_hash: str, new_hash: str, expires_at: str
) -> bool:
    """Swap the current refresh hash; False when it was not ``old_hash`` or the login is dead."""
    async with conn.execute(
        "UPDATE logins SET refresh_hash = ?, last_used_at = ?, expires_at = ?"
        " WHERE id = ? AND refresh_hash = ? AND revoked_at IS NULL",
        (new_hash, utcnow(), expires_at, login_id, old_hash),
    ) as cur:
        return cur.rowcount == 1


async def revoke(conn: aiosqlite.Connection, login_id: str, reason: str) -> bool:
    async with conn.execute(
        "UPDATE logins SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL",
        (utcnow(), reason, login_id),
    ) as cur:
        return cur.rowcount == 1


async def revoke_user(
    conn: aiosqlite.Connection, user_id: int, reason: str, *, keep: str | None = None
) -> int:
    """Revoke every live login of a user except ``keep``; the number revoked."""
    async with conn.execute(
        "UPDATE logins SET revoked_at = ?, revoke_reason = ?"
        " WHERE user_id = ? AND revoked_at IS NULL AND id IS NOT ?",
        (utcnow(), reason, user_id, keep),
    ) as cur:
        return cur.rowcount


async def purge_dead(conn: aiosqlite.Connection, before: str) -> int:
    """Delete logins that expired or were revoked before ``before`` (keeps the table small)."""
    async with conn.execute(
        "DELETE FROM logins WHERE expires_at < ? OR (revoked_at IS NOT NULL AND revoked_at < ?)",
        (before, before),
    ) as cur:
        return cur.rowcount
