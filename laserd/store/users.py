"""Typed queries on ``users``. Uniqueness is case-insensitive (NOCASE indexes in 0001)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import aiosqlite

from laserd.db import utcnow

COLUMNS = (
    "id, username, email, full_name, password_hash, role, status, email_verified, "
    "created_at, updated_at, last_login_at"
)
#: Columns an update may set (anything else is a programming error, not user input).
UPDATABLE = frozenset(
    {"username", "email", "full_name", "password_hash", "role", "status", "email_verified"}
)


class DuplicateUser(Exception):
    """A username or email that already exists (case-insensitively); ``field`` says which."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already taken")
        self.field = field


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    email: str
    full_name: str
    password_hash: str
    role: str
    status: str
    email_verified: bool
    created_at: str
    updated_at: str
    last_login_at: str | None

    @classmethod
    def from_row(cls, row: Any) -> UserRow:
        return cls(
            id=row["id"],
            username=row["username"],
            email=row["email"],
            full_name=row["full_name"],
            password_hash=row["password_hash"],
            role=row["role"],
            status=row["status"],
            email_verified=bool(row["email_verified"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            last_login_at=row["last_login_at"],
        )


def _duplicate(exc: sqlite3.IntegrityError) -> DuplicateUser | None:
    text = str(exc)
    if "UNIQUE" not in text:
        return None
    return DuplicateUser("email" if "email" in text else "username")


async def _one(conn: aiosqlite.Connection, sql: str, args: tuple[Any, ...]) -> UserRow | None:
    async with conn.execute(sql, args) as cur:
        row = await cur.fetchone()
    return UserRow.from_row(row) if row else None


async def insert(
    conn: aiosqlite.Connection,
    *,
    username: str,
    email: str,
    full_name: str,
    password_hash: str,
    role: str,
    status: str,
    email_verified: bool = False,
) -> UserRow:
    now = utcnow()
    try:
        async with conn.execute(
            f"INSERT INTO users (username, email, full_name, password_hash, role, status,"
            f" email_verified, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            f" RETURNING {COLUMNS}",
            (
                username,
                email,
                full_name,
                password_hash,
                role,
                status,
                int(email_verified),
                now,
                now,
            ),
        ) as cur:
            row = await cur.fetchone()
    except sqlite3.IntegrityError as exc:
        dup = _duplicate(exc)
        if dup is not None:
            raise dup from None
        raise
    assert row is not None
    return UserRow.from_row(row)


async def get(conn: aiosqlite.Connection, user_id: int) -> UserRow | None:
    return await _one(conn, f"SELECT {COLUMNS} FROM users WHERE id = ?", (user_id,))


async def by_login_name(conn: aiosqlite.Connection, name: str) -> UserRow | None:
    """The user whose username or email is ``name`` (case-insensitive)."""
    column = "email" if "@" in name else "username"
    return await _one(
        conn, f"SELECT {COLUMNS} FROM users WHERE {column} = ? COLLATE NOCASE", (name,)
    )


async def by_email(conn: aiosqlite.Connection, email: str) -> UserRow | None:
    return await _one(conn, f"SELECT {COLUMNS} FROM users WHERE email = ? COLLATE NOCASE", (email,))


async def update(conn: aiosqlite.Connection, user_id: int, **fields: Any) -> UserRow | None:
    """Set the given columns (and ``updated_at``); the new row, or None when it is gone."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if "email_verified" in fields:
        fields["email_verified"] = int(bool(fields["email_verified"]))
    fields["updated_at"] = utcnow()
    assignments = ", ".join(f"{name} = ?" for name in fields)
    try:
        return await _one(
            conn,
            f"UPDATE users SET {assignments} WHERE id = ? RETURNING {COLUMNS}",
            (*fields.values(), user_id),
        )
    except sqlite3.IntegrityError as exc:
        dup = _duplicate(exc)
        if dup is not None:
            raise dup from None
        raise


async def touch_login(conn: aiosqlite.Connection, user_id: int) -> None:
    await conn.execute("UPDATE users SET last_login_at = ? WHERE id = ?", (utcnow(), user_id))


async def delete(conn: aiosqlite.Connection, user_id: int) -> bool:
    async with conn.execute("DELETE FROM users WHERE id = ?", (user_id,)) as cur:
        return cur.rowcount > 0


async def next_id(conn: aiosqlite.Connection) -> int:
    """The id the next inserted user gets (``INTEGER PRIMARY KEY``: one above the highest)."""
    async with conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM users") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 1


async def count_active_admins(conn: aiosqlite.Connection) -> int:
    async with conn.execute(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND status = 'active'"
    ) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def admin_exists(conn: aiosqlite.Connection) -> bool:
    """True when any admin account exists, whatever its status (first-run setup is over)."""
    async with conn.execute("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1") as cur:
        return await cur.fetchone() is not None


async def list_page(
    conn: aiosqlite.Connection,
    *,
    limit: int,
    offset: int,
    role: str | None = None,
    status: str | None = None,
    search: str | None = None,
) -> tuple[list[UserRow], int]:
    where: list[str] = []
    args: list[Any] = []
    if role:
        where.append("role = ?")
        args.append(role)
    if status:
        where.append("status = ?")
        args.append(status)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            "(username LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\'"
            " OR full_name LIKE ? ESCAPE '\\')"
        )
        args.extend([pattern] * 3)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    async with conn.execute(f"SELECT COUNT(*) FROM users{clause}", args) as cur:
        total_row = await cur.fetchone()
    async with conn.execute(
        f"SELECT {COLUMNS} FROM users{clause} ORDER BY id LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ) as cur:
        rows = await cur.fetchall()
    return [UserRow.from_row(r) for r in rows], int(total_row[0]) if total_row else 0
