"""Database: pragmas, migrations from empty, re-run as a no-op, a failing one rolled back."""

from __future__ import annotations

from pathlib import Path

import pytest

from laserd import db

TABLES = {
    "users",
    "logins",
    "api_keys",
    "user_tokens",
    "projects",
    "files",
    "jobs",
    "audit",
    "outbox",
}


async def tables(conn) -> set[str]:
    async with conn.execute("SELECT name FROM sqlite_master WHERE type='table'") as cur:
        return {r[0] for r in await cur.fetchall()}


async def test_connection_pragmas(tmp_path: Path) -> None:
    conn = await db.connect(tmp_path / "x.db")
    try:
        for pragma, expected in (
            ("journal_mode", "wal"),
            ("foreign_keys", 1),
            ("synchronous", 2),
            ("busy_timeout", db.BUSY_TIMEOUT_MS),
        ):
            async with conn.execute(f"PRAGMA {pragma}") as cur:
                assert (await cur.fetchone())[0] == expected, pragma
    finally:
        await conn.close()


async def test_migrate_from_empty_then_no_op(tmp_path: Path) -> None:
    conn = await db.connect(tmp_path / "x.db")
    try:
        applied = await db.migrate(conn)
        assert [m.version for m in applied] == [m.version for m in db.bundled_migrations()]
        assert await tables(conn) >= TABLES
        version = await db.current_version(conn)
        assert version == db.bundled_migrations()[-1].version
        assert await db.migrate(conn) == []
        assert await db.current_version(conn) == version
        async with conn.execute("SELECT count(*) FROM schema_migrations") as cur:
            assert (await cur.fetchone())[0] == len(applied)
        assert await db.integrity_ok(conn)
    finally:
        await conn.close()


async def test_failing_migration_leaves_database_as_it_was(tmp_path: Path) -> None:
    conn = await db.connect(tmp_path / "x.db")
    try:
        good = db.Migration(1, "one", "CREATE TABLE a (x INTEGER);")
        bad = db.Migration(
            2,
            "two",
            "CREATE TABLE b (y INTEGER);\nINSERT INTO a VALUES (1);\n"
            "INSERT INTO nowhere VALUES (1);",
        )
        await db.migrate(conn, [good])
        with pytest.raises(db.MigrationError, match="0002_two"):
            await db.migrate(conn, [good, bad])
        assert await db.current_version(conn) == 1
        assert "b" not in await tables(conn)
        async with conn.execute("SELECT count(*) FROM a") as cur:
            assert (await cur.fetchone())[0] == 0
        async with conn.execute("SELECT max(version) FROM schema_migrations") as cur:
            assert (await cur.fetchone())[0] == 1
    finally:
        await conn.close()


async def test_foreign_keys_enforced(tmp_path: Path) -> None:
    conn = await db.open_database(tmp_path / "x.db")
    try:
        import sqlite3

        with pytest.raises(sqlite3.IntegrityError):
            await conn.execute(
                "INSERT INTO projects (owner_id, name, laser_json, created_at, updated_at)"
                " VALUES (999, 'p', '{}', 'now', 'now')"
            )
    finally:
        await conn.close()


def test_split_statements_refuses_incomplete() -> None:
    assert db.split_statements("CREATE TABLE a (x);\n-- c\nCREATE TABLE b (y);") == [
        "CREATE TABLE a (x);",
        "-- c\nCREATE TABLE b (y);",
    ]
    with pytest.raises(db.MigrationError):
        db.split_statements("CREATE TABLE a (x")


async def test_transaction_rolls_back(tmp_path: Path) -> None:
    conn = await db.connect(tmp_path / "x.db")
    try:
        await conn.execute("CREATE TABLE t (x INTEGER)")
        with pytest.raises(RuntimeError):
            async with db.transaction(conn):
                await conn.execute("INSERT INTO t VALUES (1)")
                raise RuntimeError("boom")
        async with conn.execute("SELECT count(*) FROM t") as cur:
            assert (await cur.fetchone())[0] == 0
    finally:
        await conn.close()


async def test_migration_removes_plain_tokens_from_the_outbox(tmp_path: Path) -> None:
    """Issue 12 item 7: bodies of reset and verification mails stored before the fix held
    the token; the migration removes it, from the rows and from the file's free space."""
    path = tmp_path / "x.db"
    conn = await db.connect(path)
    try:
        by_version = {m.name: m.version for m in db.bundled_migrations()}
        fix = by_version["outbox_without_tokens"]
        await db.migrate(conn, [m for m in db.bundled_migrations() if m.version < fix])
        token = "Plain-Token_0123456789abcdefghijklmnopqrstu"
        for kind in ("password_reset", "verify_email", "notice"):
            body = f"open #/reset-password?token={token}\n  {token}\n" if kind != "notice" else "hi"
            await conn.execute(
                "INSERT INTO outbox (created_at, to_addr, subject, body, kind, transport)"
                " VALUES ('2026-01-01T00:00:00.000Z', 'a@example.test', 's', ?, ?, 'log')",
                (body, kind),
            )
        await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert token.encode() in path.read_bytes()  # the state before the fix

        await db.migrate(conn)
        async with conn.execute("SELECT kind, body, to_addr FROM outbox ORDER BY id") as cur:
            rows = [tuple(r) for r in await cur.fetchall()]
        assert [r[0] for r in rows] == ["password_reset", "verify_email", "notice"]
        assert all(token not in body for _, body, _ in rows)
        assert rows[2][1] == "hi" and all(r[2] == "a@example.test" for r in rows)
        await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("x.db*"))
        assert token.encode() not in raw
    finally:
        await conn.close()


async def test_design_files_migration_keeps_files_and_the_jobs_that_ran_them(
    tmp_path: Path,
) -> None:
    """0005 rebuilds ``files`` (a CHECK constraint cannot change in place): rows, ids and the
    jobs' links survive, 'dxf' becomes a kind, and foreign keys still act afterwards."""
    import sqlite3

    conn = await db.connect(tmp_path / "x.db")
    try:
        by_name = {m.name: m.version for m in db.bundled_migrations()}
        before = by_name["design_files"]
        await db.migrate(conn, [m for m in db.bundled_migrations() if m.version < before])
        now = "2026-01-01T00:00:00.000Z"
        await conn.execute(
            "INSERT INTO users (id, username, email, password_hash, role, status, created_at,"
            " updated_at) VALUES (1, 'u', 'u@example.test', 'x', 'user', 'active', ?, ?)",
            (now, now),
        )
        await conn.execute(
            "INSERT INTO projects (id, owner_id, name, laser_json, created_at, updated_at)"
            " VALUES (1, 1, 'p', '{}', ?, ?)",
            (now, now),
        )
        for fid, kind in ((7, "gcode"), (8, "svg")):
            await conn.execute(
                "INSERT INTO files (id, project_id, owner_id, name, kind, size, sha256,"
                " stored_name, status, created_at, updated_at, warnings_json)"
                " VALUES (?, 1, 1, 'f', ?, 3, 'h', ?, 'ready', ?, ?, '[\"w\"]')",
                (fid, kind, f"s{fid}", now, now),
            )
        await conn.execute(
            "INSERT INTO jobs (id, file_id, user_id, state, created_at, updated_at)"
            " VALUES (1, 7, 1, 'completed', ?, ?)",
            (now, now),
        )
        await conn.commit()

        await db.migrate(conn)
        async with conn.execute("SELECT id, kind, warnings_json, layers_json FROM files") as cur:
            assert [tuple(r) for r in await cur.fetchall()] == [
                (7, "gcode", '["w"]', None),
                (8, "svg", '["w"]', None),
            ]
        async with conn.execute("SELECT file_id FROM jobs") as cur:
            assert [r[0] for r in await cur.fetchall()] == [7]
        await conn.execute(
            "INSERT INTO files (id, project_id, owner_id, name, kind, size, sha256, stored_name,"
            " status, created_at, updated_at, layers_json, placement_json)"
            " VALUES (9, 1, 1, 'd', 'dxf', 3, 'h', 's9', 'pending', ?, ?, '[]', '{}')",
            (now, now),
        )
        with pytest.raises(sqlite3.IntegrityError):
            await conn.execute(
                "INSERT INTO files (project_id, owner_id, name, kind, size, sha256, stored_name,"
                " status, created_at, updated_at) VALUES (1, 1, 'x', 'pdf', 1, 'h', 'sx',"
                " 'pending', ?, ?)",
                (now, now),
            )
        await conn.execute("DELETE FROM files WHERE id = 7")
        async with conn.execute("SELECT file_id FROM jobs") as cur:
            assert [r[0] for r in await cur.fetchall()] == [None]  # ON DELETE SET NULL acts
        async with conn.execute("PRAGMA foreign_key_check") as cur:
            assert await cur.fetchall() == []
        assert await db.integrity_ok(conn)
        await conn.commit()
        other = await db.connect(tmp_path / "x.db")  # a connection opened afterwards
        try:
            async with other.execute("SELECT kind FROM files WHERE id = 9") as cur:
                assert [r[0] for r in await cur.fetchall()] == ["dxf"]
        finally:
            await other.close()
        async with conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'files%'") as cur:
            assert sorted(r[0] for r in await cur.fetchall()) == [
                "files", "files_project", "files_status",
            ]
    finally:
        await conn.close()
