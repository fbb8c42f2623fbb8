"""Accounts for API tests: ``admin``, ``user`` and ``guest`` fixtures, and ``make_account``.

Each account is created through the real accounts service (bcrypt cost 4 in tests) and signed
in through the real ``POST /api/v1/auth/login``, so its token is a real one. Use
``account.headers`` on requests::

    async def test_something(client, user):
        r = await client.get("/api/v1/projects", headers=user.headers)

``make_account(role="user")`` makes more accounts (e.g. to check that another user's objects
answer 404).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from laserd.keys import ACCOUNTS

PASSWORD = "correct horse battery"
_serial = itertools.count(1)


@dataclass
class Account:
    id: int
    username: str
    email: str
    password: str
    role: str
    token: str
    refresh_token: str
    headers: dict[str, str] = field(default_factory=dict)


async def create_account(
    client: Any,
    role: str = "user",
    *,
    username: str | None = None,
    password: str = PASSWORD,
    status: str = "active",
    login: bool = True,
) -> Account:
    """A user with this role (active, verified), signed in unless ``login`` is False."""
    name = username or f"{role}{next(_serial)}"
    email = f"{name}@example.test"
    row = await client.app[ACCOUNTS].create_user(
        username=name,
        email=email,
        password=password,
        role=role,
        status=status,
        email_verified=True,
    )
    token = refresh = ""
    if login:
        r = await client.post("/api/v1/auth/login", json={"username": name, "password": password})
        assert r.status == 200, await r.text()
        data = await r.json()
        token, refresh = data["access_token"], data["refresh_token"]
    return Account(
        id=row.id,
        username=name,
        email=email,
        password=password,
        role=role,
        token=token,
        refresh_token=refresh,
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )


@pytest.fixture
def make_account(client: Any) -> Callable[..., Awaitable[Account]]:
    async def make(role: str = "user", **kw: Any) -> Account:
        return await create_account(client, role, **kw)

    return make


@pytest.fixture
async def admin(client: Any) -> Account:
    return await create_account(client, "admin")


@pytest.fixture
async def user(client: Any) -> Account:
    return await create_account(client, "user")


@pytest.fixture
async def guest(client: Any) -> Account:
    return await create_account(client, "guest")


async def login(client: Any, username: str, password: str = PASSWORD, **headers: str) -> Any:
    """``POST /auth/login``; the raw response (tests check statuses and headers)."""
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}, headers=headers
    )


async def error_of(response: Any) -> dict[str, Any]:
    """The ``error`` object of an error answer, without the request id (it always differs)."""
    body = await response.json()
    err = dict(body["error"])
    err.pop("request_id", None)
    return err


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
