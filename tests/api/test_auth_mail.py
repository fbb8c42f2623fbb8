"""Mail delivery: SMTP when configured (against a minimal real SMTP server), else the log;
the outbox records every message; ``/debug/outbox`` exists only in debug mode."""

from __future__ import annotations

import asyncio
from typing import Any

from laserd.app import create_app
from laserd.auth.mail import REDACTED
from laserd.keys import DB, MAILER, SETTINGS
from tests.api.conftest import PASSWORD, create_account
from tests.api.test_auth_account import outbox, reset_token, token_in
from tests.conftest import bare_hardware, make_settings


class TinySmtp:
    """Just enough of RFC 5321 for smtplib: greeting, EHLO, MAIL, RCPT, DATA, QUIT."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 tiny ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250 tiny\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go on\r\n")
                await writer.drain()
                data = await reader.readuntil(b"\r\n.\r\n")
                self.messages.append(data.decode())
                writer.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _outbox_row(client: Any, to: str, done: Any, wait_s: float = 20.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        r = await client.get("/api/v1/debug/outbox", params={"to": to})
        items = (await r.json())["items"]
        if (items and done(items[0])) or loop.time() > deadline:
            return items[0] if items else {}
        await asyncio.sleep(0.05)


async def test_smtp_delivery_is_recorded(aiohttp_client, tmp_path) -> None:
    smtp = TinySmtp()
    await smtp.start()
    try:
        settings = make_settings(
            tmp_path / "m",
            mail={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "starttls": False},
        )
        client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
        acct = await create_account(client, "user", login=False)
        r = await client.post("/api/v1/auth/password-reset/request", json={"email": acct.email})
        assert r.status == 202
        row = await _outbox_row(client, acct.email, lambda m: m["sent_at"] or m["error"])
        assert row["transport"] == "smtp" and row["sent_at"] and row["error"] is None
        assert len(smtp.messages) == 1
        assert acct.email in smtp.messages[0] and "reset" in smtp.messages[0].lower()
        # The mail carries the token; the outbox row does not (only its hash is kept).
        token = token_in(row["body"])
        assert token in smtp.messages[0]
        async with client.app[DB].execute("SELECT body FROM outbox") as cur:
            stored = [r[0] for r in await cur.fetchall()]
        assert len(stored) == 1 and token not in stored[0] and REDACTED in stored[0]
    finally:
        await smtp.stop()


async def test_smtp_failure_is_recorded_not_raised(aiohttp_client, tmp_path) -> None:
    smtp = TinySmtp()
    await smtp.start()
    port = smtp.port
    await smtp.stop()  # nothing listens there now: connection refused
    settings = make_settings(
        tmp_path / "f",
        mail={"smtp_host": "127.0.0.1", "smtp_port": port, "starttls": False, "timeout_s": 5},
    )
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    message_id = await client.app[MAILER].send("x@example.test", "hi", "body", kind="test")
    assert message_id > 0
    row = await _outbox_row(client, "x@example.test", lambda m: m["error"])
    assert row["error"] and row["sent_at"] is None


async def test_outbox_route_only_in_debug_mode(aiohttp_client, tmp_path) -> None:
    settings = make_settings(tmp_path / "p", server={"debug": False})
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    r = await client.get("/api/v1/debug/outbox")
    assert r.status == 404


async def test_outbox_table_and_database_file_hold_no_token(client, user) -> None:
    """Reset and verification tokens reach the mail (and, in debug mode, /debug/outbox from
    memory) but never the outbox table, so neither the database file nor a backup has them."""
    reset = await reset_token(client, user.email)
    r = await client.patch(
        "/api/v1/auth/me",
        json={"email": "moved@example.test", "current_password": PASSWORD},
        headers=user.headers,
    )
    assert r.status == 200
    r = await client.post("/api/v1/auth/verify-email/request", headers=user.headers)
    assert r.status == 202
    verify = token_in((await outbox(client, "moved@example.test", "verify_email"))[0]["body"])
    conn = client.app[DB]
    async with conn.execute("SELECT kind, body FROM outbox") as cur:
        rows = [tuple(r) for r in await cur.fetchall()]
    assert {kind for kind, _ in rows} == {"password_reset", "verify_email"}
    for kind, body in rows:
        assert reset not in body and verify not in body, kind
        assert body.count(REDACTED) == 2, body  # the link and the bare token
    await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = client.app[SETTINGS].db_path
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert len(raw) > 4096
    assert reset.encode() not in raw and verify.encode() not in raw


async def test_whole_bodies_are_kept_in_memory_only_in_debug_mode(aiohttp_client, tmp_path) -> None:
    settings = make_settings(tmp_path / "nodebug", server={"debug": False})
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    mailer = client.app[MAILER]
    message_id = await mailer.send("x@example.test", "s", "t=SECRET", kind="k", secrets=["SECRET"])
    assert mailer.debug_body(message_id) is None
    async with client.app[DB].execute("SELECT body FROM outbox") as cur:
        assert [r[0] for r in await cur.fetchall()] == [f"t={REDACTED}"]
