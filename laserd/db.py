"""The SQLite connection and the migration runner.

One aiosqlite connection (its own thread) serves the daemon. Choices, and why:

- ``journal_mode=WAL``: readers never block the writer, and a crash cannot corrupt the file.
- ``synchronous=FULL``: every commit is on the SD card before we answer. An appliance loses
  power without warning; an account change or a job's final state must survive that. Our
  write rate (a handful of commits per second at most) makes the cost invisible.
- ``foreign_keys=ON`` so ownership cascades are enforced by the database, not hoped for.
- ``busy_timeout`` so a backup tool or ``sqlite3`` shell holding a lock briefly does not fail
  requests.

The connection runs in autocommit mode (``isolation_level=None``); multi-statement writes use
:func:`transaction`, which issues ``BEGIN IMMEDIATE`` and commits or rolls back as a unit.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)
# aiosqlite logs every statement with its parameters at DEBUG: reset tokens in outbox bodies,
# token and key hashes, e-mail addresses. Never, whatever the daemon's log level.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

BUSY_TIMEOUT_MS = 5000


def utcnow() -> str:
    """Now as ISO 8601 UTC with millisecond precision and ``Z`` (the API's timestamp form)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def connect(path: Path) -> aiosqlite.Connection:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = FULL")
    await conn.execute("PRAGMA foreign_keys = ON")
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass
    return conn


@asynccontextmanager
async def transaction(conn: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; any exception rolls the whole unit back.

    Only for code that has the connection to itself (the migration runner, the command
    line): on the daemon's one shared connection, a transaction held across awaits would
    take in other coroutines' statements. Services write with single statements instead
    (an ``INSERT … RETURNING`` or an ``UPDATE … WHERE`` that checks its own precondition).
    """
    await conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    else:
        await conn.execute("COMMIT")


# ---------------------------------------------------------------------------- migrations


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


class MigrationError(Exception):
    pass


def bundled_migrations() -> list[Migration]:
    """The numbered ``NNNN_name.sql`` files shipped in ``laserd/migrations``."""
    found: list[Migration] = []
    for entry in resources.files("laserd.migrations").iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        head, _, rest = name.partition("_")
        if not head.isdigit():
            raise MigrationError(f"migration file {name!r} must start with a number")
        found.append(Migration(int(head), rest[:-4], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers: {versions}")
    return found


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (``executescript`` would commit implicitly)."""
    statements: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        raise MigrationError("migration ends with an incomplete statement")
    return statements


async def count_rows(conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> int:
    """The number a ``SELECT count(*) ...`` answers (an aggregate always returns one row)."""
    async with conn.execute(sql, params) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row is not None else 0


async def current_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(
    conn: aiosqlite.Connection, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied.

    The version is recorded in ``PRAGMA user_version`` and in ``schema_migrations`` inside the
    same transaction as the migration itself, so a failing migration leaves both the schema
    and the recorded version exactly as they were.
    """
    migrations = bundled_migrations() if migrations is None else migrations
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    have = await current_version(conn)
    applied: list[Migration] = []
    for m in migrations:
        if m.version <= have:
            continue
        try:
            async with transaction(conn):
                for stmt in split_statements(m.sql):
                    await conn.execute(stmt)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.name, utcnow()),
                )
                await conn.execute(f"PRAGMA user_version = {int(m.version)}")
        except sqlite3.Error as exc:
            raise MigrationError(f"migration {m.version:04d}_{m.name} failed: {exc}") from exc
        log.info("applied migration %04d_%s", m.version, m.name)
        applied.append(m)
        have = m.version
    return applied


async def open_database(path: Path) -> aiosqlite.Connection:
    """Connect and bring the schema up to date (used by ``serve`` and ``migrate``)."""
    conn = await connect(path)
    try:
        await migrate(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


async def integrity_ok(conn: aiosqlite.Connection) -> bool:
    async with conn.execute("PRAGMA quick_check") as cur:
        row = await cur.fetchone()
    return row is not None and row[0] == "ok"
