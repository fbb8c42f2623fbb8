"""The app served the way ``laserd serve`` serves it, in-process: aiohttp's runner behind the
connection guard (``laserd.netguard``) on a loopback port.

aiohttp's test client uses its own server, which answers malformed HTTP and holds sockets the
stock way; tests about those answers and about connections use this instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from laserd.app import create_app
from laserd.netguard import ConnectionGuard, GuardedSite, serving_kwargs
from laserd.settings import Settings
from tests.conftest import bare_hardware


@dataclass
class Served:
    app: web.Application
    port: int
    guard: ConnectionGuard

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve_app(settings: Settings) -> AsyncIterator[Served]:
    app = create_app(settings, hardware=bare_hardware())
    kwargs = serving_kwargs(settings.server)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, **kwargs)
    await runner.setup()
    try:
        site = GuardedSite(runner, "127.0.0.1", 0, settings.server, kwargs)
        await site.start()
        assert site.guard is not None
        yield Served(app, site.port, site.guard)
    finally:
        await runner.cleanup()


async def raw_exchange(port: int, request: bytes, source: str = "127.0.0.1") -> bytes:
    """Send raw bytes from ``source`` and read the answer until the server closes or 5 s."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(request)
        await writer.drain()
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(5):
                while chunk := await reader.read(65536):
                    chunks.append(chunk)
                    if _complete(b"".join(chunks)):
                        break
        return b"".join(chunks)
    finally:
        writer.close()


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def half_open(port: int, source: str) -> socket.socket:
    """A connection that sends the start of a request head and never finishes it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: laserd\r\n")
    s.setblocking(False)
    return s
