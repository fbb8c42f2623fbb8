"""The request origin: what the services below the web layer know of the caller.

The request-id middleware puts a ``RequestOrigin`` (client address, request id, user agent)
in a context variable; the audit log, sign-in, password reset and setup read it instead of an
HTTP request (issue 13 item 2). These tests go through the real app behind a trusted proxy,
so the address can only be right if the middleware's ``X-Forwarded-For`` rule reached the
service.
"""

from __future__ import annotations

import asyncio
from typing import Any

from laserd.app import create_app
from laserd.keys import DB
from laserd.origin import NO_ORIGIN, RequestOrigin, current_origin, origin_scope
from tests.api.conftest import create_account, login
from tests.conftest import bare_hardware, make_settings

PROXIED = {"X-Forwarded-For": "10.0.0.7", "User-Agent": "origin-test/1.0"}


async def proxied_client(aiohttp_client: Any, tmp_path: Any) -> Any:
    settings = make_settings(tmp_path / "proxied", server={"trusted_proxies": ["127.0.0.0/8"]})
    return await aiohttp_client(create_app(settings, hardware=bare_hardware()))


async def audit_items(client: Any, admin_headers: dict[str, str], event: str) -> list[Any]:
    r = await client.get("/api/v1/audit", params={"event": event}, headers=admin_headers)
    assert r.status == 200, await r.text()
    return [i for i in (await r.json())["items"] if i["event"] == event]


async def test_sign_in_records_the_forwarded_address_request_id_and_user_agent(
    aiohttp_client, tmp_path
) -> None:
    client = await proxied_client(aiohttp_client, tmp_path)
    admin = await create_account(client, "admin")
    await create_account(client, "user", username="walker", login=False)
    r = await login(client, "walker", **PROXIED, **{"X-Request-ID": "origin-login-1"})
    assert r.status == 200, await r.text()
    entries = [
        e for e in await audit_items(client, admin.headers, "login") if e["target"] == "walker"
    ]
    assert len(entries) == 1
    assert entries[0]["client_ip"] == "10.0.0.7"
    assert entries[0]["request_id"] == "origin-login-1"
    async with client.app[DB].execute(
        "SELECT client_ip, user_agent FROM logins WHERE user_id ="
        " (SELECT id FROM users WHERE username = 'walker')"
    ) as cur:
        rows = [tuple(r) for r in await cur.fetchall()]
    assert rows == [("10.0.0.7", "origin-test/1.0")]


async def test_a_failed_sign_in_counts_against_the_forwarded_address(
    aiohttp_client, tmp_path
) -> None:
    client = await proxied_client(aiohttp_client, tmp_path)
    admin = await create_account(client, "admin")
    r = await login(client, "nobody", "wrong password", **PROXIED, **{"X-Request-ID": "bad-1"})
    assert r.status == 401
    [failed] = await audit_items(client, admin.headers, "login_failed")
    assert (failed["client_ip"], failed["request_id"]) == ("10.0.0.7", "bad-1")


async def test_the_reset_mail_recorded_later_keeps_the_requests_origin(
    aiohttp_client, tmp_path
) -> None:
    """The reset request answers 202 at once and records its audit entry from a task."""
    client = await proxied_client(aiohttp_client, tmp_path)
    admin = await create_account(client, "admin")
    target = await create_account(client, "user", login=False)
    r = await client.post(
        "/api/v1/auth/password-reset/request",
        json={"email": target.email},
        headers={**PROXIED, "X-Request-ID": "reset-req-1"},
    )
    assert r.status == 202
    for _ in range(200):
        entries = await audit_items(client, admin.headers, "password_reset_request")
        if entries:
            break
        await asyncio.sleep(0.05)
    assert [(e["client_ip"], e["request_id"]) for e in entries] == [("10.0.0.7", "reset-req-1")]


async def test_reset_requests_are_limited_per_forwarded_address(aiohttp_client, tmp_path) -> None:
    """The mail limit is the recovery service's own (no handler applies it any more)."""
    client = await proxied_client(aiohttp_client, tmp_path)
    statuses = []
    for i in range(12):
        r = await client.post(
            "/api/v1/auth/password-reset/request",
            json={"email": f"n{i}@example.test"},
            headers={"X-Forwarded-For": "10.0.0.8"},
        )
        statuses.append(r.status)
    assert statuses[0] == 202 and statuses[-1] == 429
    r = await client.post(
        "/api/v1/auth/password-reset/request",
        json={"email": "other@example.test"},
        headers={"X-Forwarded-For": "10.0.0.9"},
    )
    assert r.status == 202  # another client behind the proxy is not limited by the first


async def test_wrong_setup_codes_are_limited_per_forwarded_address(
    aiohttp_client, tmp_path
) -> None:
    settings = make_settings(
        tmp_path / "setup",
        server={"trusted_proxies": ["127.0.0.0/8"]},
        auth={"setup_max_attempts": 2},
    )
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    body = {
        "setup_code": "WRONG-WRONG-WRONG",
        "username": "boss",
        "email": "boss@example.test",
        "password": "correct horse battery",
    }
    first = [
        (await client.post("/api/v1/setup", json=body, headers={"X-Forwarded-For": "10.0.0.1"}))
        for _ in range(3)
    ]
    assert [r.status for r in first] == [403, 403, 429]
    assert int(first[-1].headers["Retry-After"]) >= 1
    r = await client.post("/api/v1/setup", json=body, headers={"X-Forwarded-For": "10.0.0.2"})
    assert r.status == 403  # wrong, but not limited: another address


async def test_origin_is_empty_outside_a_request_and_scoped_inside_one() -> None:
    assert current_origin() is NO_ORIGIN
    origin = RequestOrigin(address="192.0.2.1", request_id="r1", user_agent="ua")
    with origin_scope(origin):
        assert current_origin() is origin
        seen = await asyncio.create_task(_read_origin())  # a task started inside inherits it
        assert seen is origin
    assert current_origin() is NO_ORIGIN


async def _read_origin() -> RequestOrigin:
    return current_origin()
