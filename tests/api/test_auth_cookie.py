"""Browser cookie mode: the refresh token as an HttpOnly cookie, and its CSRF defence."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

from laserd.app import create_app
from tests.api.conftest import PASSWORD, error_of, login
from tests.conftest import bare_hardware, make_settings

COOKIE = {"X-Refresh-Cookie": "1"}
REFRESH = "/api/v1/auth/refresh"


def _set_cookie(response: Any) -> Any:
    jar = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        jar.load(header)
    return jar.get("laserd_refresh")


async def test_login_sets_a_strict_httponly_cookie_and_hides_the_token(client, user) -> None:
    r = await login(client, user.username, **COOKIE)
    assert r.status == 200
    body = await r.json()
    assert body["refresh_token"] == "" and body["access_token"]
    morsel = _set_cookie(r)
    assert morsel is not None and morsel.value
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/api/v1/auth"
    assert not morsel["secure"]  # cookie_secure defaults to false (plain http on a LAN)
    assert int(morsel["max-age"]) == 30 * 86400


async def test_secure_flag_follows_the_setting(aiohttp_client, tmp_path) -> None:
    settings = make_settings(tmp_path / "s", auth={"cookie_secure": True})
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    from tests.api.conftest import create_account

    acct = await create_account(client, "user", login=False)
    r = await login(client, acct.username, **COOKIE)
    assert _set_cookie(r)["secure"] is True


async def test_refresh_from_the_cookie_rotates_it(client, user) -> None:
    first = _set_cookie(await login(client, user.username, **COOKIE)).value
    r = await client.post(REFRESH, json={}, headers=COOKIE)
    assert r.status == 200, await r.text()
    assert (await r.json())["refresh_token"] == ""
    second = _set_cookie(r).value
    assert second and second != first
    # The browser's jar now holds the new cookie; the old one is spent.
    r = await client.post(REFRESH, json={"refresh_token": first})
    assert r.status == 401  # reuse: the family is revoked
    r = await client.post(REFRESH, json={}, headers=COOKIE)
    assert r.status == 401
    assert _set_cookie(r).value == ""  # a failed cookie refresh clears the cookie


async def test_cookie_is_not_read_without_the_custom_header(client, user) -> None:
    await login(client, user.username, **COOKIE)
    r = await client.post(REFRESH, json={})
    assert r.status == 422  # no header: the cookie is ignored, so a cross-site form gets nowhere


async def test_foreign_origin_is_refused_own_and_configured_accepted(
    aiohttp_client, tmp_path
) -> None:
    settings = make_settings(tmp_path / "o", server={"cors_origins": ["http://ui.example.test"]})
    client = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    from tests.api.conftest import create_account

    acct = await create_account(client, "user", login=False)
    await login(client, acct.username, **COOKIE)
    r = await client.post(REFRESH, json={}, headers={**COOKIE, "Origin": "http://evil.test"})
    assert r.status == 403 and (await error_of(r))["code"] == "bad_origin"
    own = f"http://{client.server.host}:{client.server.port}"
    r = await client.post(REFRESH, json={}, headers={**COOKIE, "Origin": own})
    assert r.status == 200
    r = await client.post(REFRESH, json={}, headers={**COOKIE, "Origin": "http://ui.example.test"})
    assert r.status == 200


async def test_refresh_without_a_cookie(client) -> None:
    r = await client.post(REFRESH, json={}, headers=COOKIE)
    assert r.status == 401


async def test_logout_clears_the_cookie(client, user) -> None:
    r = await login(client, user.username, PASSWORD, **COOKIE)
    token = (await r.json())["access_token"]
    r = await client.post(
        "/api/v1/auth/logout", json={}, headers={**COOKIE, "Authorization": f"Bearer {token}"}
    )
    assert r.status == 204
    assert _set_cookie(r).value == ""
    r = await client.post(REFRESH, json={}, headers=COOKIE)
    assert r.status == 401


async def test_logout_with_only_the_cookie(client, user) -> None:
    """Sign-out still ends the login when the access token is gone or expired."""
    await login(client, user.username, **COOKIE)
    r = await client.post(
        "/api/v1/auth/logout", json={}, headers={**COOKIE, "Authorization": "Bearer expired.junk.x"}
    )
    assert r.status == 204
    r = await client.post(REFRESH, json={}, headers=COOKIE)
    assert r.status == 401
