"""Registration, profile, password change, password reset and email verification."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from laserd.app import create_app
from laserd.keys import ACCOUNTS, DB
from tests.api.conftest import PASSWORD, bearer, error_of, login
from tests.conftest import bare_hardware, make_settings

REGISTER = "/api/v1/auth/register"
NEW_PASSWORD = "a brand new secret"


async def app_client(aiohttp_client: Any, tmp_path: Any, **auth: Any) -> Any:
    settings = make_settings(tmp_path / "reg", auth=auth)
    return await aiohttp_client(create_app(settings, hardware=bare_hardware()))


async def outbox(client: Any, to: str, kind: str, *, wait_s: float = 10.0) -> list[dict]:
    """Messages of a kind to an address (the reset mail is prepared in the background)."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        r = await client.get("/api/v1/debug/outbox", params={"to": to})
        assert r.status == 200
        items = [m for m in (await r.json())["items"] if m["kind"] == kind]
        if items or asyncio.get_running_loop().time() > deadline:
            return items
        await asyncio.sleep(0.02)


async def change_email(client: Any, account: Any, email: str) -> None:
    r = await client.patch(
        "/api/v1/auth/me",
        json={"email": email, "current_password": account.password},
        headers=account.headers,
    )
    assert r.status == 200, await r.text()


def token_in(body: str) -> str:
    match = re.search(r"token=([A-Za-z0-9_-]+)", body)
    assert match, body
    return match.group(1)


# ---------------------------------------------------------------------------- registration


async def test_registration_approval_is_the_default(client) -> None:
    r = await client.post(
        REGISTER,
        json={"username": "newbie", "email": "newbie@example.test", "password": PASSWORD},
    )
    assert r.status == 201
    body = await r.json()
    assert body["status"] == "pending" and body["role"] == "user"
    assert body["email_verified"] is False
    assert (await login(client, "newbie")).status == 403
    assert await outbox(client, "newbie@example.test", "verify_email")


async def test_registration_open_and_closed(aiohttp_client, tmp_path) -> None:
    open_client = await app_client(aiohttp_client, tmp_path / "o", registration="open")
    r = await open_client.post(
        REGISTER, json={"username": "walkin", "email": "w@example.test", "password": PASSWORD}
    )
    assert r.status == 201 and (await r.json())["status"] == "active"
    assert (await login(open_client, "walkin")).status == 200

    closed = await app_client(aiohttp_client, tmp_path / "c", registration="closed")
    r = await closed.post(
        REGISTER, json={"username": "walkin", "email": "w@example.test", "password": PASSWORD}
    )
    assert r.status == 403


async def test_registration_validation_and_uniqueness(client, user) -> None:
    cases = [
        ({"username": "x", "email": "x@example.test", "password": PASSWORD}, "username"),
        ({"username": "bad name", "email": "x@example.test", "password": PASSWORD}, "username"),
        ({"username": "has@sign", "email": "x@example.test", "password": PASSWORD}, "username"),
        ({"username": "okname", "email": "not-an-email", "password": PASSWORD}, "email"),
        ({"username": "okname", "email": "x@example.test", "password": "short"}, "password"),
        ({"username": "okname", "email": "x@example.test"}, "password"),
        (
            {"username": "okname", "email": "x@e.test", "password": PASSWORD, "role": "admin"},
            "role",
        ),
    ]
    for payload, field in cases:
        r = await client.post(REGISTER, json=payload)
        assert r.status == 422, payload
        err = await error_of(r)
        assert err["code"] == "validation_error"
        assert field in [d["field"] for d in err["details"]], (payload, err)
    r = await client.post(
        REGISTER,
        json={"username": user.username.upper(), "email": "z@example.test", "password": PASSWORD},
    )
    assert r.status == 409 and (await error_of(r))["code"] == "username_taken"
    r = await client.post(
        REGISTER,
        json={"username": user.username, "email": user.email.upper(), "password": PASSWORD},
    )
    assert r.status == 409 and (await error_of(r))["code"] == "username_taken"


async def test_registration_does_not_reveal_a_registered_email(client, admin, user) -> None:
    """A taken address answers as a new one would (201, same fields, pending, unverified);
    no account is made, and the address's owner gets a mail about it instead."""
    fresh = await client.post(
        REGISTER, json={"username": "newcomer", "email": "new@example.test", "password": PASSWORD}
    )
    taken = await client.post(
        REGISTER,
        json={"username": "impostor", "email": user.email.upper(), "password": PASSWORD},
    )
    assert fresh.status == taken.status == 201
    a, b = await fresh.json(), await taken.json()
    assert set(a) == set(b)
    same = ("role", "status", "email_verified", "full_name", "last_login_at")
    assert [a[k] for k in same] == [b[k] for k in same] == ["user", "pending", False, "", None]
    assert b["username"] == "impostor" and b["email"] == user.email.upper()
    assert b["id"] == a["id"] + 1  # what the next account would get
    assert fresh.headers["Content-Type"] == taken.headers["Content-Type"]

    r = await client.get("/api/v1/users", params={"q": "impostor"}, headers=admin.headers)
    assert (await r.json())["total"] == 0  # nothing was created
    mails = await outbox(client, user.email, "account_exists")
    assert len(mails) == 1 and f"'{user.username}'" in mails[0]["body"]
    assert "token" not in mails[0]["body"]
    assert await outbox(client, user.email, "verify_email", wait_s=0) == []
    r = await client.get("/api/v1/audit?event=register_existing_email", headers=admin.headers)
    assert (await r.json())["items"][0]["target"] == user.username
    # The owner's reset mails are counted apart: three of these leave a reset possible.
    for i in range(3):
        await client.post(
            REGISTER, json={"username": f"again{i}", "email": user.email, "password": PASSWORD}
        )
    assert len(await outbox(client, user.email, "account_exists")) == 3  # then no more mail
    await client.post("/api/v1/auth/password-reset/request", json={"email": user.email})
    assert await outbox(client, user.email, "password_reset")


async def test_registration_with_a_taken_email_does_the_same_bcrypt_work(client, user) -> None:
    """The time of a registration is bcrypt's (a quarter to a whole second at cost 12); the
    database work beside it is a few statements on both paths. So the answer takes the same
    time when both paths hash the password exactly once — counted here, not timed: a timed
    comparison on a shared, loaded CI machine would fail at random."""
    hasher = client.app[ACCOUNTS].hasher
    calls: list[str] = []
    real_hash = hasher.hash

    async def counting(password: str) -> str:
        calls.append(password)
        return await real_hash(password)

    hasher.hash = counting  # type: ignore[method-assign]
    try:
        for username, email in (("fresh1", "fresh1@example.test"), ("taken1", user.email)):
            calls.clear()
            r = await client.post(
                REGISTER, json={"username": username, "email": email, "password": PASSWORD}
            )
            assert r.status == 201
            assert calls == [PASSWORD], username
    finally:
        del hasher.hash


# ---------------------------------------------------------------------------- profile


async def test_me_and_patch_me(client, user) -> None:
    r = await client.get("/api/v1/auth/me", headers=user.headers)
    me = await r.json()
    assert set(me) >= {
        "id",
        "username",
        "email",
        "full_name",
        "role",
        "status",
        "email_verified",
        "created_at",
        "last_login_at",
    }
    assert me["email_verified"] is True and me["created_at"].endswith("Z")
    r = await client.patch("/api/v1/auth/me", json={"full_name": "Ada L."}, headers=user.headers)
    assert r.status == 200 and (await r.json())["full_name"] == "Ada L."
    assert (await r.json())["email_verified"] is True
    r = await client.patch(
        "/api/v1/auth/me",
        json={"email": "ada@example.test", "current_password": PASSWORD},
        headers=user.headers,
    )
    body = await r.json()
    assert body["email"] == "ada@example.test" and body["email_verified"] is False


async def test_patch_me_cannot_change_role_or_status(client, user) -> None:
    for payload in ({"role": "admin"}, {"status": "active"}, {"email_verified": True}):
        r = await client.patch("/api/v1/auth/me", json=payload, headers=user.headers)
        assert r.status == 422, payload
    r = await client.get("/api/v1/auth/me", headers=user.headers)
    assert (await r.json())["role"] == "user"


async def test_patch_me_email_taken(client, user, admin) -> None:
    r = await client.patch(
        "/api/v1/auth/me",
        json={"email": admin.email, "current_password": PASSWORD},
        headers=user.headers,
    )
    assert r.status == 409 and (await error_of(r))["code"] == "email_taken"


# ---------------------------------------------------------------------------- passwords


async def test_change_password_keeps_this_login_and_ends_the_others(client, user) -> None:
    other = await (await login(client, user.username)).json()
    r = await client.post(
        "/api/v1/auth/change-password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=user.headers,
    )
    assert r.status == 204
    assert (await client.get("/api/v1/auth/me", headers=user.headers)).status == 200
    r = await client.get("/api/v1/auth/me", headers=bearer(other["access_token"]))
    assert r.status == 401
    assert (await login(client, user.username)).status == 401
    assert (await login(client, user.username, NEW_PASSWORD)).status == 200


async def test_change_password_errors(client, user) -> None:
    r = await client.post(
        "/api/v1/auth/change-password",
        json={"current_password": "wrong wrong", "new_password": NEW_PASSWORD},
        headers=user.headers,
    )
    assert r.status == 422
    assert (await error_of(r))["details"][0]["field"] == "current_password"
    r = await client.post(
        "/api/v1/auth/change-password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=user.headers,
    )
    assert r.status == 422
    assert (await error_of(r))["details"][0]["field"] == "new_password"
    r = await client.post(
        "/api/v1/auth/change-password",
        json={"current_password": PASSWORD, "new_password": "x" * 73},
        headers=user.headers,
    )
    assert r.status == 422
    assert (await login(client, user.username)).status == 200


async def test_password_reset_flow(client, user) -> None:
    other = await (await login(client, user.username)).json()
    r = await client.post("/api/v1/auth/password-reset/request", json={"email": user.email})
    assert r.status == 202
    mails = await outbox(client, user.email, "password_reset")
    assert len(mails) == 1
    token = token_in(mails[0]["body"])
    assert len(token) >= 22  # ≥ 128 bits in URL-safe base64
    async with client.app[DB].execute("SELECT token_hash FROM user_tokens") as cur:
        assert token not in [row[0] for row in await cur.fetchall()]  # only a hash is kept

    r = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "short"}
    )
    assert r.status == 422  # a weak password does not spend the token
    r = await client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": NEW_PASSWORD},
    )
    assert r.status == 204
    for t in (user.token, other["access_token"]):  # every login ends
        assert (await client.get("/api/v1/auth/me", headers=bearer(t))).status == 401
    assert (await login(client, user.username, NEW_PASSWORD)).status == 200
    r = await client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "yet another one"},
    )
    assert r.status == 422  # single use
    assert (await error_of(r))["details"][0]["field"] == "token"


async def test_reset_request_does_not_enumerate(client, user) -> None:
    known = await client.post("/api/v1/auth/password-reset/request", json={"email": user.email})
    unknown = await client.post(
        "/api/v1/auth/password-reset/request", json={"email": "nobody@example.test"}
    )
    assert known.status == unknown.status == 202
    assert await known.json() == await unknown.json()
    assert await outbox(client, user.email, "password_reset")
    assert await outbox(client, "nobody@example.test", "password_reset", wait_s=0.3) == []


async def test_newer_reset_token_spends_the_older(client, user) -> None:
    await client.post("/api/v1/auth/password-reset/request", json={"email": user.email})
    first = token_in((await outbox(client, user.email, "password_reset"))[0]["body"])
    await client.post("/api/v1/auth/password-reset/request", json={"email": user.email})
    for _ in range(500):
        mails = await outbox(client, user.email, "password_reset")
        if len(mails) == 2:
            break
        await asyncio.sleep(0.02)
    second = token_in(mails[0]["body"])  # newest first
    assert first != second
    r = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": first, "new_password": NEW_PASSWORD}
    )
    assert r.status == 422
    r = await client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": second, "new_password": NEW_PASSWORD},
    )
    assert r.status == 204


async def test_expired_reset_token(client, user) -> None:
    await client.post("/api/v1/auth/password-reset/request", json={"email": user.email})
    token = token_in((await outbox(client, user.email, "password_reset"))[0]["body"])
    await client.app[DB].execute("UPDATE user_tokens SET expires_at = '2000-01-01T00:00:00.000Z'")
    r = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert r.status == 422


async def test_reset_requests_are_rate_limited_per_address(client) -> None:
    statuses = []
    for i in range(12):
        r = await client.post(
            "/api/v1/auth/password-reset/request", json={"email": f"n{i}@example.test"}
        )
        statuses.append(r.status)
    assert statuses[:10] == [202] * 10
    assert statuses[-1] == 429


# ---------------------------------------------------------------------------- verification


async def test_email_verification_flow(client, user) -> None:
    r = await client.patch(
        "/api/v1/auth/me",
        json={"email": "fresh@example.test", "current_password": PASSWORD},
        headers=user.headers,
    )
    assert (await r.json())["email_verified"] is False
    r = await client.post("/api/v1/auth/verify-email/request", headers=user.headers)
    assert r.status == 202
    mails = await outbox(client, "fresh@example.test", "verify_email")
    token = token_in(mails[0]["body"])
    r = await client.post("/api/v1/auth/verify-email/confirm", json={"token": token})
    assert r.status == 204
    me = await (await client.get("/api/v1/auth/me", headers=user.headers)).json()
    assert me["email_verified"] is True
    r = await client.post("/api/v1/auth/verify-email/confirm", json={"token": token})
    assert r.status == 422


async def test_verification_token_dies_when_the_email_changes(client, user) -> None:
    await change_email(client, user, "one@example.test")
    await client.post("/api/v1/auth/verify-email/request", headers=user.headers)
    token = token_in((await outbox(client, "one@example.test", "verify_email"))[0]["body"])
    await change_email(client, user, "two@example.test")
    r = await client.post("/api/v1/auth/verify-email/confirm", json={"token": token})
    assert r.status == 422


async def test_verify_request_when_already_verified(client, user) -> None:
    r = await client.post("/api/v1/auth/verify-email/request", headers=user.headers)
    assert r.status == 202
    assert "already" in (await r.json())["message"]
    assert await outbox(client, user.email, "verify_email", wait_s=0.1) == []


async def test_mail_without_smtp_is_logged_with_the_link(client, user, caplog) -> None:
    caplog.set_level("WARNING", logger="laserd.auth.mail")
    await client.post("/api/v1/auth/password-reset/request", json={"email": user.email})
    mails = await outbox(client, user.email, "password_reset")
    assert mails[0]["transport"] == "log" and mails[0]["sent_at"]
    token = token_in(mails[0]["body"])
    assert any(
        "mail not configured" in r.getMessage() and token in r.getMessage() for r in caplog.records
    )


# ------------------------------------------------------------------ tokens die with a change


async def mailed_token(client: Any, email: str, kind: str, request: Any) -> str:
    """Ask for a mail of this kind (``request`` sends it) and return the token it carries."""
    before = len(await outbox(client, email, kind, wait_s=0))
    await request()
    for _ in range(500):
        mails = await outbox(client, email, kind)
        if len(mails) > before:
            return token_in(mails[0]["body"])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {kind} mail to {email}")


async def reset_token(client: Any, email: str) -> str:
    async def ask() -> None:
        r = await client.post("/api/v1/auth/password-reset/request", json={"email": email})
        assert r.status == 202

    return await mailed_token(client, email, "password_reset", ask)


async def test_email_change_needs_the_current_password(client, user) -> None:
    for payload, message in (
        ({"email": "thief@example.test"}, "is required"),
        ({"email": "thief@example.test", "current_password": "not the password"}, "not correct"),
    ):
        r = await client.patch("/api/v1/auth/me", json=payload, headers=user.headers)
        assert r.status == 422, payload
        err = await error_of(r)
        assert err["code"] == "validation_error"
        assert err["details"][0]["field"] == "current_password"
        assert message in err["details"][0]["message"]
    me = await (await client.get("/api/v1/auth/me", headers=user.headers)).json()
    assert me["email"] == user.email
    # The name alone, or the same address in another letter case, needs no password.
    r = await client.patch(
        "/api/v1/auth/me",
        json={"email": user.email.upper(), "full_name": "Ada"},
        headers=user.headers,
    )
    assert r.status == 200 and (await r.json())["email_verified"] is True


async def test_reset_token_dies_when_the_email_changes(client, user) -> None:
    token = await reset_token(client, user.email)
    await change_email(client, user, "elsewhere@example.test")
    r = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert r.status == 422
    assert (await error_of(r))["details"][0]["field"] == "token"
    assert (await login(client, user.username)).status == 200


async def test_reset_and_verification_tokens_die_when_the_password_changes(client, user) -> None:
    await change_email(client, user, "unverified@example.test")

    async def ask_verification() -> None:
        r = await client.post("/api/v1/auth/verify-email/request", headers=user.headers)
        assert r.status == 202

    verify = await mailed_token(client, "unverified@example.test", "verify_email", ask_verification)
    reset = await reset_token(client, "unverified@example.test")
    r = await client.post(
        "/api/v1/auth/change-password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=user.headers,
    )
    assert r.status == 204
    r = await client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": reset, "new_password": "the attacker's pick"},
    )
    assert r.status == 422
    r = await client.post("/api/v1/auth/verify-email/confirm", json={"token": verify})
    assert r.status == 422
    assert (await login(client, user.username, NEW_PASSWORD)).status == 200


async def test_a_password_reset_spends_the_verification_token_too(client, user) -> None:
    await change_email(client, user, "second@example.test")

    async def ask_verification() -> None:
        await client.post("/api/v1/auth/verify-email/request", headers=user.headers)

    verify = await mailed_token(client, "second@example.test", "verify_email", ask_verification)
    reset = await reset_token(client, "second@example.test")
    r = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": reset, "new_password": NEW_PASSWORD}
    )
    assert r.status == 204
    r = await client.post("/api/v1/auth/verify-email/confirm", json={"token": verify})
    assert r.status == 422


async def test_reset_token_dies_when_an_admin_sets_the_password_or_email(
    client, admin, user
) -> None:
    for change in ({"password": NEW_PASSWORD}, {"email": "moved@example.test"}):
        token = await reset_token(client, user.email)
        r = await client.patch(f"/api/v1/users/{user.id}", json=change, headers=admin.headers)
        assert r.status == 200, await r.text()
        r = await client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"token": token, "new_password": "the attacker's pick"},
        )
        assert r.status == 422, change
