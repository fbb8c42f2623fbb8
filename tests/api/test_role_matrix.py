"""Role × route matrix: every registered API route, called as anonymous, guest, user, admin.

The routes come from ``app[ROUTE_SPECS]``, so routes other areas add later are walked too, and
the test fails if the router holds an API route the specs do not describe. The point is the
gate: below the declared role the answer must be the gate's 401/403; at or above it, anything
but the gate's refusal (a 404 id or an empty body is enough to get past it). Each call uses a
fresh login so that routes like ``/auth/logout`` cannot spoil the calls after them.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from aiohttp import WSMsgType

from laserd.api.routing import API_PREFIX, openapi_path
from laserd.auth.principal import Role
from laserd.keys import ACCOUNTS, ROUTE_SPECS
from tests.api.conftest import create_account

CALLERS = (Role.public, Role.guest, Role.user, Role.admin)
MISSING_ID = "999999999"
REQUEST_TIMEOUT_S = 60
PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def concrete_path(path: str) -> str:
    """Fill path parameters with values that name nothing (ids that do not exist)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return MISSING_ID if name == "id" or name.endswith("_id") else "no-such-thing"

    return PARAM.sub(fill, path)


def gate_refused(status: int, body: Any, needed: Role) -> bool:
    """The route wrapper's own refusal (as opposed to a handler's answer)."""
    if status == 401:
        return True
    if status == 403 and isinstance(body, dict):
        return body.get("error", {}).get("message") == f"This needs the {needed.value} role."
    return False


async def _headers_for(client: Any, caller: Role, accounts: dict[Role, Any]) -> dict[str, str]:
    if caller is Role.public:
        return {}
    service = client.app[ACCOUNTS]
    row = await service.get(accounts[caller].id)
    pair = await service.sessions.open_login(row, client_ip="127.0.0.1", user_agent="matrix")
    return {"Authorization": f"Bearer {pair.access_token}"}


async def _call(client: Any, method: str, url: str, headers: dict[str, str]) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    r = await asyncio.wait_for(client.request(method, url, **kwargs), REQUEST_TIMEOUT_S)
    try:
        body = await r.json(content_type=None)
    except ValueError:
        body = None
    r.release()
    return r.status, body


async def test_every_route_enforces_its_declared_role(client) -> None:
    accounts = {
        Role.guest: await create_account(client, "guest", login=False),
        Role.user: await create_account(client, "user", login=False),
        Role.admin: await create_account(client, "admin", login=False),
    }
    specs = [s for s in client.app[ROUTE_SPECS] if not s.self_auth]
    failures: list[str] = []
    for spec in specs:
        url = concrete_path(spec.full_path)
        for caller in CALLERS:
            status, body = await _call(
                client, spec.method, url, await _headers_for(client, caller, accounts)
            )
            allowed = caller.allows(spec.role)
            where = f"{spec.method} {spec.path} as {caller.value} (needs {spec.role.value})"
            if allowed:
                if gate_refused(status, body, spec.role):
                    failures.append(f"{where}: refused with {status} {body}")
            elif caller is Role.public:
                code = (body or {}).get("error", {}).get("code")
                if status != 401 or code != "not_authenticated":
                    failures.append(f"{where}: expected 401 not_authenticated, got {status}")
            elif not (status == 403 and gate_refused(status, body, spec.role)):
                failures.append(f"{where}: expected the gate's 403, got {status} {body}")
    assert not failures, "\n".join(failures)


async def test_the_matrix_covers_every_registered_api_route(client) -> None:
    specs = client.app[ROUTE_SPECS]
    described = {(s.method, openapi_path(s.full_path)) for s in specs}
    registered = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith(API_PREFIX) and route.method not in ("HEAD", "OPTIONS"):
            registered.add((route.method, openapi_path(path)))
    assert registered - described == set(), "API routes registered without a RouteSpec"
    for spec in specs:
        assert spec.role in CALLERS, spec
    # The accounts area itself is in the walk (guards against an empty spec list).
    assert ("GET", API_PREFIX + "/users/{id}") in described
    assert ("POST", API_PREFIX + "/auth/logout") in described


async def test_self_authenticating_routes_refuse_bad_first_messages(client) -> None:
    ws_specs = [s for s in client.app[ROUTE_SPECS] if s.self_auth]
    if not ws_specs:
        pytest.skip("no self-authenticating route registered yet")
    for spec in ws_specs:
        url = concrete_path(spec.full_path)
        for first in (
            {"type": "auth", "token": "not-a-token"},
            {"type": "auth", "token": "lzr_not-a-key"},
            {"type": "subscribe"},
        ):
            ws = await client.ws_connect(url)
            await ws.send_json(first)
            closed = False
            for _ in range(20):
                msg = await asyncio.wait_for(ws.receive(), REQUEST_TIMEOUT_S)
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                    closed = True
                    break
                if msg.type == WSMsgType.TEXT:
                    assert '"machine"' not in msg.data and '"job"' not in msg.data, (
                        f"{spec.path} pushed data before authentication: {msg.data[:200]}"
                    )
            await ws.close()
            assert closed, f"{spec.path} kept an unauthenticated socket open after {first}"
