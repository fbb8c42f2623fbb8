"""Sign-in: success paths, enumeration-safe failures, status checks, brute-force defence."""

from __future__ import annotations

from typing import Any

from laserd.app import create_app
from laserd.keys import ACCOUNTS
from tests.api.conftest import PASSWORD, create_account, error_of, login
from tests.conftest import bare_hardware, make_settings

LOGIN = "/api/v1/auth/login"


async def limited_client(aiohttp_client: Any, tmp_path: Any, **auth: Any) -> Any:
    settings = make_settings(tmp_path / "limited", auth=auth)
    return await aiohttp_client(create_app(settings, hardware=bare_hardware()))


async def test_login_by_username_or_email_any_case(client, user) -> None:
    for name in (user.username, user.username.upper(), user.email, user.email.upper()):
        r = await login(client, name)
        assert r.status == 200, name
        data = await r.json()
        assert data["token_type"] == "bearer"
        assert data["expires_in"] == 8 * 86400
        assert data["refresh_expires_in"] == 30 * 86400
        assert data["user"]["username"] == user.username
        assert data["user"]["last_login_at"]
        assert "password_hash" not in data["user"]


async def test_unknown_user_and_wrong_password_answer_the_same(client, user) -> None:
    wrong = await login(client, user.username, "not the password")
    unknown = await login(client, "nobody-here", "not the password")
    unknown_mail = await login(client, "nobody@example.test", "not the password")
    assert wrong.status == unknown.status == unknown_mail.status == 401
    bodies = [await error_of(r) for r in (wrong, unknown, unknown_mail)]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["code"] == "not_authenticated"


async def test_pending_and_disabled_accounts_get_403_only_with_the_right_password(
    client,
) -> None:
    await create_account(client, "user", username="waiting", status="pending", login=False)
    await create_account(client, "user", username="gone", status="disabled", login=False)
    r = await login(client, "waiting")
    assert r.status == 403 and (await error_of(r))["code"] == "account_pending"
    r = await login(client, "gone")
    assert r.status == 403 and (await error_of(r))["code"] == "account_disabled"
    r = await login(client, "gone", "wrong password")
    assert r.status == 401  # no status leak without the password


async def test_73_byte_password_is_a_clear_422(client, user) -> None:
    for password in ("a" * 73, "é" * 37):  # 73 and 74 bytes in UTF-8
        r = await login(client, user.username, password)
        assert r.status == 422
        err = await error_of(r)
        assert err["code"] == "validation_error"
        assert err["details"][0]["field"] == "password"
        assert "72 bytes" in err["details"][0]["message"]
    r = await client.post(
        "/api/v1/auth/register",
        json={"username": "longpw", "email": "l@example.test", "password": "a" * 73},
    )
    assert r.status == 422


async def test_72_byte_password_works_whole(client) -> None:
    password = "b" * 71 + "c"
    await create_account(client, "user", username="exact72", password=password, login=False)
    assert (await login(client, "exact72", password)).status == 200
    assert (await login(client, "exact72", "b" * 71 + "d")).status == 401


async def test_login_validation(client) -> None:
    r = await client.post(LOGIN, json={"username": "x"})
    assert r.status == 422
    r = await client.post(LOGIN, data="not json", headers={"Content-Type": "application/json"})
    assert r.status == 400
    r = await client.post(LOGIN, json={"username": "x", "password": "y", "role": "admin"})
    assert r.status == 422


async def test_failures_per_address_give_429_with_retry_after(aiohttp_client, tmp_path) -> None:
    client = await limited_client(
        aiohttp_client, tmp_path, login_ip_max_failures=3, account_max_failures=100
    )
    for i in range(3):
        r = await login(client, f"nobody{i}", "wrong password")
        assert r.status == 401
    r = await login(client, "nobody9", "wrong password")
    assert r.status == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert (await error_of(r))["code"] == "rate_limited"


async def test_forwarded_for_is_ignored_unless_the_peer_is_trusted(
    aiohttp_client, tmp_path
) -> None:
    client = await limited_client(
        aiohttp_client, tmp_path, login_ip_max_failures=2, account_max_failures=100
    )
    for i in range(2):
        await login(client, f"x{i}", "wrong password", **{"X-Forwarded-For": f"10.0.0.{i}"})
    r = await login(client, "x9", "wrong password", **{"X-Forwarded-For": "10.0.0.99"})
    assert r.status == 429  # the header did not spread the failures over fake addresses

    settings = make_settings(
        tmp_path / "proxied",
        auth={"login_ip_max_failures": 2, "account_max_failures": 100},
        server={"trusted_proxies": ["127.0.0.0/8"]},
    )
    proxied = await aiohttp_client(create_app(settings, hardware=bare_hardware()))
    for i in range(2):
        await login(proxied, f"x{i}", "wrong password", **{"X-Forwarded-For": "10.0.0.1"})
    r = await login(proxied, "x9", "wrong password", **{"X-Forwarded-For": "10.0.0.2"})
    assert r.status == 401  # another client behind the trusted proxy is not blocked
    r = await login(proxied, "x9", "wrong password", **{"X-Forwarded-For": "10.0.0.1"})
    assert r.status == 429


async def test_account_lockout_423_and_admin_unlock(aiohttp_client, tmp_path) -> None:
    client = await limited_client(
        aiohttp_client, tmp_path, account_max_failures=3, login_ip_max_failures=100
    )
    admin = await create_account(client, "admin", username="boss")
    victim = await create_account(client, "user", username="victim", login=False)
    for _ in range(3):
        assert (await login(client, "victim", "wrong password")).status == 401
    # Locked now, even with the right password, whichever name is used.
    for name in ("victim", victim.email):
        r = await login(client, name, PASSWORD)
        assert r.status == 423, name
        assert (await error_of(r))["code"] == "locked"
        assert int(r.headers["Retry-After"]) >= 1
    r = await client.post(f"/api/v1/users/{victim.id}/unlock", headers=admin.headers)
    assert r.status == 200 and (await r.json()) == {"was_locked": True}
    assert (await login(client, "victim", PASSWORD)).status == 200
    audit = await client.get("/api/v1/audit?event=account_locked", headers=admin.headers)
    assert (await audit.json())["total"] == 1
    # Unknown names lock the same way, so a lock does not reveal that an account exists.
    for _ in range(3):
        await login(client, "ghost", "wrong password")
    assert (await login(client, "ghost", "wrong password")).status == 423


async def test_success_resets_the_failure_count(aiohttp_client, tmp_path) -> None:
    client = await limited_client(
        aiohttp_client, tmp_path, account_max_failures=3, login_ip_max_failures=100
    )
    await create_account(client, "user", username="careless", login=False)
    for _ in range(2):
        await login(client, "careless", "wrong password")
    assert (await login(client, "careless")).status == 200
    for _ in range(2):
        await login(client, "careless", "wrong password")
    assert (await login(client, "careless")).status == 200


async def test_login_and_failure_are_audited(client, admin, user) -> None:
    await login(client, user.username, "wrong password")
    r = await client.get("/api/v1/audit?event=login", headers=admin.headers)
    events = [(i["event"], i["target"]) for i in (await r.json())["items"]]
    assert ("login_failed", user.username) in events
    assert ("login", user.username) in events


async def test_old_cost_hashes_are_upgraded_on_login(aiohttp_client, tmp_path) -> None:
    client = await limited_client(aiohttp_client, tmp_path, bcrypt_rounds=5)
    acct = await create_account(client, "user", username="oldhash", login=False)
    accounts = client.app[ACCOUNTS]
    accounts.hasher.rounds = 4  # as if the cost setting changed since the hash was made
    assert (await login(client, "oldhash")).status == 200
    row = await accounts.get(acct.id)
    assert row.password_hash.startswith("$2b$04$")


# ------------------------------------------------ lockout per (address, account) pair


async def proxied_client(aiohttp_client: Any, tmp_path: Any, **auth: Any) -> Any:
    """A client whose address each request chooses (X-Forwarded-For from a trusted peer)."""
    settings = make_settings(
        tmp_path / "pairs", auth=auth, server={"trusted_proxies": ["127.0.0.0/8"]}
    )
    return await aiohttp_client(create_app(settings, hardware=bare_hardware()))


def from_ip(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_an_attacker_locks_only_its_own_address_out(aiohttp_client, tmp_path) -> None:
    client = await proxied_client(
        aiohttp_client, tmp_path, account_max_failures=5, login_ip_max_failures=100
    )
    await create_account(client, "admin", username="boss", login=False)
    await create_account(client, "user", username="victim", login=False)
    for name in ("boss", "victim"):
        for _ in range(5):
            r = await login(client, name, "wrong password", **from_ip("10.0.0.66"))
            assert r.status == 401
        # The attacker's address is locked out of the account, right password or not ...
        r = await login(client, name, PASSWORD, **from_ip("10.0.0.66"))
        assert r.status == 423 and (await error_of(r))["code"] == "locked"
        assert int(r.headers["Retry-After"]) >= 1
        # ... and the owner, from their own address, signs in.
        assert (await login(client, name, PASSWORD, **from_ip("10.0.0.7"))).status == 200
        assert (await login(client, name, PASSWORD, **from_ip("10.0.0.66"))).status == 423


async def test_slow_per_account_limit_one_try_per_address_right_password_passes(
    aiohttp_client, tmp_path
) -> None:
    """Past ``account_slow_max_failures`` (here 6) wrong passwords from all addresses, each
    address gets one wrong try; a right password from an address not locked still signs in,
    which is how an admin always gets in from a new address."""
    client = await proxied_client(
        aiohttp_client,
        tmp_path,
        account_max_failures=3,
        account_slow_max_failures=6,
        login_ip_max_failures=100,
    )
    admin = await create_account(client, "admin", username="root", login=False)
    for attacker in ("10.0.1.1", "10.0.1.2"):  # 3 + 3 failures: the slow budget is spent
        for _ in range(3):
            assert (await login(client, "root", "wrong", **from_ip(attacker))).status == 401
        assert (await login(client, "root", PASSWORD, **from_ip(attacker))).status == 423
    # Under attack: a new address is locked out after one wrong try, not three.
    assert (await login(client, "root", "wrong", **from_ip("10.0.1.3"))).status == 401
    assert (await login(client, "root", PASSWORD, **from_ip("10.0.1.3"))).status == 423
    # The admin, from an address that has not failed, signs in with the right password.
    r = await login(client, "root", PASSWORD, **from_ip("192.168.1.20"))
    assert r.status == 200
    token = (await r.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}", **from_ip("192.168.1.20")}
    events = await (await client.get("/api/v1/audit?event=account", headers=headers)).json()
    kinds = [e["event"] for e in events["items"]]
    assert kinds.count("account_locked") == 3 and kinds.count("account_under_attack") == 1
    # An unlock lifts every address's lock and the account's slow budget.
    r = await client.post(f"/api/v1/users/{admin.id}/unlock", headers=headers)
    assert r.status == 200 and (await r.json()) == {"was_locked": True}
    assert (await login(client, "root", PASSWORD, **from_ip("10.0.1.3"))).status == 200
    assert (await login(client, "root", "wrong", **from_ip("10.0.1.4"))).status == 401
    assert (await login(client, "root", PASSWORD, **from_ip("10.0.1.4"))).status == 200


async def test_wrong_current_password_counts_like_a_failed_sign_in(
    aiohttp_client, tmp_path
) -> None:
    """A stolen access token must not make change-password an unthrottled password oracle."""
    client = await limited_client(
        aiohttp_client, tmp_path, account_max_failures=3, login_ip_max_failures=100
    )
    acct = await create_account(client, "user", username="holder")
    for _ in range(3):
        r = await client.post(
            "/api/v1/auth/change-password",
            json={"current_password": "guess guess", "new_password": "whatever 123"},
            headers=acct.headers,
        )
        assert r.status == 422
    for path, body in (
        ("/api/v1/auth/change-password", {"current_password": PASSWORD, "new_password": "x" * 9}),
        ("/api/v1/auth/me", {"email": "new@example.test", "current_password": PASSWORD}),
    ):
        method = client.patch if path.endswith("/me") else client.post
        r = await method(path, json=body, headers=acct.headers)
        assert r.status == 423, path
    assert (await login(client, "holder")).status == 423
