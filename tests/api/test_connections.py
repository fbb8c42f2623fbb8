"""Connection caps, the request-head deadline and quiet logs (issue 12, item 8), in-process.

The app is served the way ``laserd serve`` serves it (tests/api/served.py). Attackers connect
from other loopback addresses (127.0.0.2, ...; Linux routes all of 127/8 to lo), the
well-behaved client from 127.0.0.1. The daemon-level test with a real descriptor limit is
tests/daemon/test_connections.py.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from laserd.descriptors import RESOURCE_LOG_INTERVAL_S, ThrottledLog, install_resource_handler
from tests.api.served import Served, half_open, raw_exchange, serve_app
from tests.conftest import make_settings

HEALTH = b"GET /api/v1/health HTTP/1.1\r\nHost: laserd\r\nConnection: close\r\n\r\n"


@pytest.fixture
async def served(tmp_path) -> AsyncIterator[Served]:
    settings = make_settings(
        tmp_path / "state",
        server={
            "max_connections": 8,
            "max_connections_per_address": 5,
            "header_timeout_s": 1.0,
        },
    )
    async with serve_app(settings) as s:
        yield s


def _closed_by_server(s: socket.socket) -> bytes | None:
    """What the server sent before closing (``b""`` for a bare close); None while open."""
    try:
        data = s.recv(65536)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return b""
    return data


async def _wait_closed(s: socket.socket, timeout_s: float) -> bytes | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = _closed_by_server(s)
        if got is not None:
            return got
        await asyncio.sleep(0.05)
    return None


async def _health(served: Served, source: str = "127.0.0.1") -> tuple[int, float]:
    started = time.monotonic()
    raw = await raw_exchange(served.port, HEALTH, source)
    return int(raw.split(b" ", 2)[1]) if raw else 0, time.monotonic() - started


async def test_past_the_per_address_cap_connections_get_a_503_unread(served, caplog) -> None:
    caplog.set_level(logging.INFO)
    held = [half_open(served.port, "127.0.0.2") for _ in range(5)]
    await asyncio.sleep(0.2)
    assert all(_closed_by_server(s) is None for s in held)
    excess = [half_open(served.port, "127.0.0.2") for _ in range(20)]
    answers = [await _wait_closed(s, 2.0) for s in excess]
    for raw in answers:
        assert raw is not None, "a connection past the cap was kept open"
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503"), raw[:200]
        assert b"application/json" in head and b"Retry-After: 5" in head
        error = json.loads(body)["error"]
        assert error["code"] == "unavailable" and "this address" in error["message"]
    # Another address is served at once; the attacker's address is still held to its cap.
    status, seconds = await _health(served)
    assert status == 200 and seconds < 2.0
    assert served.guard.counts.by_address["127.0.0.2"] == 5
    # Twenty refusals, one log line.
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    for s in held + excess:
        s.close()


async def test_half_open_connections_are_closed_after_the_head_timeout(served) -> None:
    held = [half_open(served.port, "127.0.0.3") for _ in range(4)]
    started = time.monotonic()
    for s in held:
        got = await _wait_closed(s, 5.0)
        assert got == b"", f"not closed (or answered: {got!r})"
    assert time.monotonic() - started < 1.0 + 1.5
    assert served.guard.counts.total == 0 and not served.guard.waiting
    for s in held:
        s.close()


async def test_a_head_sent_a_byte_at_a_time_meets_the_same_deadline(served) -> None:
    s = socket.create_connection(("127.0.0.1", served.port), source_address=("127.0.0.4", 0))
    s.setblocking(False)
    started = time.monotonic()
    closed = None
    for byte in b"GET /api/v1/health HTTP/1.1\r\nHost: laserd\r\nX-Slow: " + b"a" * 200:
        try:
            s.send(bytes([byte]))
        except OSError:
            closed = time.monotonic()
            break
        if _closed_by_server(s) is not None:
            closed = time.monotonic()
            break
        await asyncio.sleep(0.1)
    s.close()
    assert closed is not None and closed - started < 1.0 + 1.5


async def test_at_the_total_cap_a_half_open_connection_makes_room(served) -> None:
    """Eight sockets from two addresses fill the total cap without passing the per-address
    one: a real request still gets through, in place of the oldest waiting socket."""
    first = [half_open(served.port, "127.0.0.5") for _ in range(5)]
    await asyncio.sleep(0.05)
    second = [half_open(served.port, "127.0.0.6") for _ in range(3)]
    await asyncio.sleep(0.2)
    assert served.guard.counts.total == 8
    status, seconds = await _health(served)
    assert status == 200 and seconds < 2.0
    assert await _wait_closed(first[0], 1.0) == b"", "the oldest waiting socket was not closed"
    assert all(_closed_by_server(s) is None for s in first[1:] + second)
    for s in first + second:
        s.close()


async def test_at_the_total_cap_with_every_connection_busy_new_ones_get_a_503(served) -> None:
    """WebSockets past their head hold their place; the ninth connection is refused."""
    async with aiohttp.ClientSession() as session:
        sockets = []
        for i in range(8):
            connector_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=(f"127.0.1.{i + 1}", 0))
            )
            ws = await connector_session.ws_connect(f"{served.base_url}/api/v1/ws")
            sockets.append((connector_session, ws))
        # Past the head deadline (1 s) the sockets are still open: the deadline is for heads.
        await asyncio.sleep(1.5)
        assert all(not ws.closed for _, ws in sockets)
        async with session.get(f"{served.base_url}/api/v1/health") as r:
            assert r.status == 503
            assert (await r.json())["error"]["code"] == "unavailable"
        for s, ws in sockets:
            await ws.close()
            await s.close()
    await asyncio.sleep(0.2)
    assert served.guard.counts.total == 0


async def test_keep_alive_clients_are_served_as_before(served) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(5):
            async with session.get(f"{served.base_url}/api/v1/health") as r:
                assert r.status == 200
        # Idle past the timeout: the server closes, the client reconnects by itself.
        await asyncio.sleep(1.5)
        async with session.get(f"{served.base_url}/api/v1/health") as r:
            assert r.status == 200


# ---------------------------------------------------------------------------- log floods


def test_throttled_log_allows_one_line_per_interval_and_counts_the_rest() -> None:
    now = [0.0]
    throttle = ThrottledLog(10.0, clock=lambda: now[0])
    assert throttle.allow() == 0
    assert [throttle.allow() for _ in range(500)] == [None] * 500
    now[0] = 10.0
    assert throttle.allow() == 500
    assert throttle.allow() is None


async def test_out_of_descriptors_on_accept_is_one_line_not_a_traceback_each(caplog) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    install_resource_handler(loop)
    try:
        exc = OSError(errno.EMFILE, "Too many open files")
        for _ in range(1000):
            loop.call_exception_handler(
                {"message": "socket.accept() out of system resource", "exception": exc}
            )
        lines = [r for r in caplog.records if "out of system resource" in r.getMessage()]
        assert len(lines) == 1 and lines[0].exc_info is None
        assert "Too many open files" in lines[0].getMessage()
        assert RESOURCE_LOG_INTERVAL_S >= 10
        # Anything else still reaches asyncio's handler, with its traceback.
        caplog.clear()
        loop.call_exception_handler({"message": "something else", "exception": ValueError()})
        assert any("something else" in r.getMessage() for r in caplog.records)
    finally:
        loop.set_exception_handler(previous)

