"""Denial-of-service refusals at the API layer (issue 12: items 10, 11 and 15).

- Deeply nested JSON (a RecursionError in the parser) is a 400 ``bad_request``, on HTTP bodies
  and in the WebSocket's auth message, never a 500.
- WebSockets are capped per client address and in total; the excess is closed with 4429.
- Hostile query strings get the JSON error envelope, never aiohttp's ``text/plain``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import pytest
from aiohttp import WSMsgType

from laserd.api import ws as ws_api
from laserd.app import create_app
from tests.api.conftest import error_of
from tests.api.served import raw_exchange, serve_app
from tests.conftest import bare_hardware, make_settings

API = "/api/v1"
WS_TIMEOUT_S = 30

#: The attack of the issue: 100k opening brackets (a RecursionError in json.loads).
DEEP_ARRAYS = b"[" * 100_000
DEEP_OBJECTS = b'{"a":' * 50_000


# ---------------------------------------------------------------------------- nested JSON


@pytest.mark.parametrize(
    "raw",
    [
        DEEP_ARRAYS,
        DEEP_OBJECTS,
        b'{"username": "a", "password": "p", "x": ' + b"[" * 100_000 + b"}",
        # Complete and parseable by Python's json module, but past laserd's nesting limit.
        b'{"username": "a", "password": "p", "x": ' + b"[" * 500 + b"]" * 500 + b"}",
    ],
    ids=["arrays", "objects", "inside-a-field", "complete-but-deep"],
)
async def test_deeply_nested_json_body_is_a_bad_request(client, raw: bytes, caplog) -> None:
    r = await client.post(
        f"{API}/auth/login", data=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status == 400, (await r.text())[:500]
    assert r.content_type == "application/json"
    error = await error_of(r)
    assert error["code"] == "bad_request"
    assert "nest" in error["message"]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


async def test_nesting_within_the_limit_is_still_read(client) -> None:
    """The limit refuses attacks, not JSON: a body nested a few levels deep is validated."""
    body = {"username": "a", "password": "p", "x": [[[[{"y": [1]}]]]]}
    r = await client.post(f"{API}/auth/login", json=body)
    assert r.status != 400, await r.text()


@pytest.mark.parametrize("raw", [DEEP_ARRAYS[:60_000], DEEP_OBJECTS[:60_000]], ids=["a", "o"])
async def test_deeply_nested_websocket_auth_message_is_a_bad_request(
    client, raw: bytes, caplog
) -> None:
    ws = await client.ws_connect(f"{API}/ws")
    await ws.send_str(raw.decode())
    msg = await ws.receive(timeout=WS_TIMEOUT_S)
    assert msg.type == WSMsgType.TEXT, msg
    data = json.loads(msg.data)
    assert data["type"] == "error" and data["code"] == "bad_request", data
    msg = await ws.receive(timeout=WS_TIMEOUT_S)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED), msg
    assert ws.close_code == ws_api.CLOSE_AUTH_FAILED
    await ws.close()
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text



# ---------------------------------------------------------------------------- WebSocket caps


@pytest.fixture
async def capped(aiohttp_client: Any, tmp_path: Path) -> Any:
    """An app with small WebSocket caps; the loopback peer is a trusted proxy, so that
    ``X-Forwarded-For`` can stand for many client addresses."""
    settings = make_settings(
        tmp_path / "state",
        server={
            "debug": True,
            "access_log": False,
            "max_websockets": 5,
            "max_websockets_per_address": 3,
            "trusted_proxies": ["127.0.0.1"],
        },
    )
    return await aiohttp_client(create_app(settings, hardware=bare_hardware()))


async def _open(client: Any, address: str) -> Any:
    return await client.ws_connect(f"{API}/ws", headers={"X-Forwarded-For": address})


async def _closed_with(ws: Any) -> tuple[int | None, str]:
    msg = await ws.receive(timeout=WS_TIMEOUT_S)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED), msg
    return ws.close_code, msg.extra or ""


async def _still_open(ws: Any) -> bool:
    """Open and admitted: no close frame arrives within a short look."""
    try:
        msg = await ws.receive(timeout=0.3)
    except TimeoutError:
        return True
    return msg.type not in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)


async def test_websockets_are_capped_per_address_with_close_code_4429(capped, make_account):
    user = await make_account("user")
    first = await _open(capped, "10.0.0.1")
    await first.send_json({"type": "auth", "token": user.token})
    assert (await first.receive_json(timeout=WS_TIMEOUT_S))["type"] == "hello"
    # Two more, never authenticated: they count too while they wait.
    waiting = [await _open(capped, "10.0.0.1") for _ in range(2)]
    assert all([await _still_open(ws) for ws in waiting])
    excess = await _open(capped, "10.0.0.1")
    code, reason = await _closed_with(excess)
    assert code == ws_api.CLOSE_TOO_MANY == 4429
    assert "this address" in reason
    # Another address is not affected, and a closed socket frees its place.
    other = await _open(capped, "10.0.0.2")
    assert await _still_open(other)
    await waiting[0].close()
    again = await _open(capped, "10.0.0.1")
    await again.send_json({"type": "auth", "token": user.token})
    assert (await again.receive_json(timeout=WS_TIMEOUT_S))["type"] == "hello"
    for ws in (first, waiting[1], other, again):
        await ws.close()


async def test_websockets_are_capped_in_total(capped) -> None:
    sockets = [await _open(capped, f"10.0.1.{i}") for i in range(5)]
    assert all([await _still_open(ws) for ws in sockets])
    excess = await _open(capped, "10.0.1.99")
    code, reason = await _closed_with(excess)
    assert code == 4429 and "try again later" in reason
    for ws in sockets:
        await ws.close()
    # Every place is free again once the sockets have gone.
    for _ in range(50):
        if capped.app[ws_api.SOCKET_COUNTS].total == 0:
            break
        await asyncio.sleep(0.05)
    assert capped.app[ws_api.SOCKET_COUNTS].total == 0
    assert not capped.app[ws_api.SOCKET_COUNTS].by_address


async def test_an_unauthenticated_websocket_is_closed_within_five_seconds(client) -> None:
    started = time.monotonic()
    ws = await client.ws_connect(f"{API}/ws")
    code, reason = await _closed_with(ws)
    assert code == ws_api.CLOSE_AUTH_FAILED and "timeout" in reason
    assert time.monotonic() - started < 5 + 2


# ---------------------------------------------------------------------------- hostile query strings

#: What the fuzzer sent (schemathesis, seed 2): ``offset`` repeated with JSON-ish junk of every
#: script, percent-encoded, until the request line passed aiohttp's 8190-byte limit.
JUNK = ["n?õÀ篬[", "", "{'\\x0ej': ['null', -4.6e+16]}", "A\x80\x19 \x940$", "[{}, ['¦', 'true']]"]


def hostile_query(min_bytes: int) -> str:
    parts: list[str] = []
    i = 0
    while len("&".join(parts)) < min_bytes:
        parts.append("offset=" + quote_plus(JUNK[i % len(JUNK)] + str(i)))
        i += 1
    return "&".join(parts)


async def _envelope(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return status, headers, json.loads(body)


async def test_a_request_line_past_the_limit_answers_the_json_envelope(tmp_path) -> None:
    """The fuzzer's failure: ``GET /api/v1/jobs`` with a query string past 8190 bytes was
    answered by aiohttp's parser in ``text/plain``, before any middleware ran."""
    settings = make_settings(tmp_path / "state")
    query = hostile_query(12_000)
    async with serve_app(settings) as served, aiohttp.ClientSession() as session:
        async with session.get(f"{served.base_url}{API}/jobs?{query}") as r:
            assert len(r.url.raw_path_qs) > 8190
            assert r.status == 400
            assert r.content_type == "application/json", await r.text()
            error = (await r.json())["error"]
            assert error["code"] == "bad_request" and "too long" in error["message"]
            assert error["request_id"] == r.headers["X-Request-ID"]
        # The same kind of query within the limit reaches the route: 401 without a token,
        # (the query is validated after authentication), still the envelope.
        async with session.get(f"{served.base_url}{API}/jobs?{hostile_query(2000)}") as r:
            assert r.status == 401 and r.content_type == "application/json"


@pytest.mark.parametrize(
    "line",
    [
        b"GET /api/v1/jobs?state=a b HTTP/1.1",  # a raw space in the query
        b"GET /api/v1/jobs?state=a\x01b HTTP/1.1",  # a control byte
        "GET /api/v1/jobs?state=\u00e9 HTTP/1.1".encode(),  # raw UTF-8, not percent-encoded
        b"GET /api/v1/jobs?" + b"a" * 9000 + b" HTTP/1.1",
    ],
    ids=["space", "control", "raw-utf8", "long"],
)
async def test_malformed_request_lines_answer_the_json_envelope(tmp_path, line, caplog) -> None:
    settings = make_settings(tmp_path / "state")
    async with serve_app(settings) as served:
        raw = await raw_exchange(served.port, line + b"\r\nHost: laserd\r\n\r\n")
    status, headers, body = await _envelope(raw)
    assert status == 400, raw[:300]
    assert headers["content-type"].startswith("application/json")
    assert body["error"]["code"] == "bad_request"
    assert headers["x-request-id"] == body["error"]["request_id"]
    assert "Traceback" not in caplog.text


async def test_the_query_of_the_job_list_is_validated_into_the_envelope(client, user) -> None:
    """Within the line limit, repeated and junk values are a 422 with details."""
    r = await client.get(f"{API}/jobs?{hostile_query(2000)}", headers=user.headers)
    assert r.status == 422 and r.content_type == "application/json"
    assert (await error_of(r))["details"][0]["field"] == "offset"
