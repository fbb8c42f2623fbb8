"""Mail delivery: SMTP when configured (against a minimal real SMTP server), else the log;
the outbox records every message; ``/debug/outbox`` exists only in debug mode."""

from __future__ import annotations

import asyncio
from typing import Any

from laserd.app import create_app
from laserd.keys import MAILER
from tests.api.conftest import create_account
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
