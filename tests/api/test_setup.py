"""First run: the setup code, POST /setup, and ``laserd create-admin``."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from laserd.app import create_app
from laserd.auth.cli import create_admin_cli
from laserd.keys import SETUP_CODE
from tests.api.conftest import PASSWORD, create_account, error_of, login
from tests.conftest import bare_hardware, make_settings

SETUP = "/api/v1/setup"


def _body(code: str, **over: Any) -> dict[str, Any]:
    return {
        "setup_code": code,
        "username": "root",
        "email": "root@example.test",
        "password": PASSWORD,
        **over,
    }


async def test_setup_code_is_printed_and_creates_the_first_admin(capsys, client) -> None:
    printed = capsys.readouterr().out
    match = re.search(r"setup code: ([A-Z0-9-]+)", printed)
    assert match, printed
    assert "laserd create-admin --username U --email E --password-stdin" in printed
    code = match.group(1)
    assert code == client.app[SETUP_CODE].code

    assert await (await client.get(SETUP)).json() == {"needed": True}
    r = await client.post(SETUP, json=_body("WRONG-CODE-0000"))
    assert r.status == 403 and (await error_of(r))["code"] == "bad_setup_code"
    r = await client.post(SETUP, json=_body(code.lower().replace("-", " ")))  # typed loosely
    assert r.status == 201, await r.text()
    admin = await r.json()
    assert admin["role"] == "admin" and admin["status"] == "active" and admin["email_verified"]
    assert (await login(client, "root")).status == 200

    assert await (await client.get(SETUP)).json() == {"needed": False}
    r = await client.post(SETUP, json=_body(code, username="second", email="s@example.test"))
    assert r.status == 403  # for good, even with the old code


async def test_setup_validation(client) -> None:
    code = client.app[SETUP_CODE].code
    r = await client.post(SETUP, json=_body(code, password="x" * 73))
    assert r.status == 422
    r = await client.post(SETUP, json=_body(code, password="short"))
    assert r.status == 422
    r = await client.post(SETUP, json={"setup_code": code})
    assert r.status == 422
    assert await (await client.get(SETUP)).json() == {"needed": True}


async def test_wrong_codes_are_rate_limited(aiohttp_client, tmp_path) -> None:
    settings = make_settings(tmp_path / "s", auth={"setup_max_attempts": 3})
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    for _ in range(3):
        assert (await client.post(SETUP, json=_body("AAAA-BBBB-CCCC"))).status == 403
    r = await client.post(SETUP, json=_body(client.app[SETUP_CODE].code))
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1


async def test_racing_setups_make_one_admin(client) -> None:
    code = client.app[SETUP_CODE].code
    results = await asyncio.gather(
        *(
            client.post(SETUP, json=_body(code, username=f"r{i}", email=f"r{i}@example.test"))
            for i in range(4)
        )
    )
    assert sorted(r.status for r in results) == [201, 403, 403, 403]


async def test_no_setup_code_once_an_admin_exists(aiohttp_client, tmp_path, capsys) -> None:
    settings = make_settings(tmp_path / "s")
    first = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    await create_account(first, "admin", login=False)
    await first.close()
    capsys.readouterr()
    second = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    assert second.app[SETUP_CODE].code is None
    assert "setup code" not in capsys.readouterr().out
    r = await second.post(SETUP, json=_body("AAAA-BBBB-CCCC"))
    assert r.status == 403


def test_create_admin_cli(tmp_path, capsys) -> None:
    settings = make_settings(tmp_path / "cli")
    assert create_admin_cli(settings, "chief", "chief@example.test", PASSWORD, "Chief") == 0
    assert "chief" in capsys.readouterr().out
    assert create_admin_cli(settings, "CHIEF", "other@example.test", PASSWORD, "") == 1
    assert "already taken" in capsys.readouterr().err
    assert create_admin_cli(settings, "other", "CHIEF@example.test", PASSWORD, "") == 1
    assert create_admin_cli(settings, "x", "bad", PASSWORD, "") == 1
    assert create_admin_cli(settings, "toolong", "t@example.test", "y" * 80, "") == 1
    assert create_admin_cli(settings, "tooshort", "t@example.test", "y", "") == 1


async def test_cli_admin_can_sign_in_and_closes_setup(aiohttp_client, tmp_path) -> None:
    settings = make_settings(tmp_path / "cli2")
    # The command runs its own event loop, as it does from the shell.
    made = await asyncio.to_thread(
        create_admin_cli, settings, "chief", "chief@example.test", PASSWORD, ""
    )
    assert made == 0
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    assert await (await client.get(SETUP)).json() == {"needed": False}
    r = await login(client, "chief")
    assert r.status == 200 and (await r.json())["user"]["role"] == "admin"
