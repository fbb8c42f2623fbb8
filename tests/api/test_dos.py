"""Denial-of-service refusals at the API layer (issue 12: items 10, 11 and 15).

- Deeply nested JSON (a RecursionError in the parser) is a 400 ``bad_request``, on HTTP bodies
  and in the WebSocket's auth message, never a 500.
- WebSockets are capped per client address and in total; the excess is closed with 4429.
- Hostile query strings get the JSON error envelope, never aiohttp's ``text/plain``.
"""

from __future__ import annotations

import json

import pytest
from aiohttp import WSMsgType

from laserd.api import ws as ws_api
from tests.api.conftest import error_of

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

