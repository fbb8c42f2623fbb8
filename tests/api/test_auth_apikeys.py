"""API keys: shown once, stored hashed, capped at the owner's role, revocable, expiring."""

from __future__ import annotations

from laserd.auth import tokens
from laserd.keys import DB
from tests.api.conftest import error_of

KEYS = "/api/v1/auth/api-keys"


async def _create(client, account, **body) -> dict:
    r = await client.post(KEYS, json={"name": "shop pc", **body}, headers=account.headers)
    assert r.status == 201, await r.text()
    return await r.json()


async def test_create_use_list_revoke(client, user) -> None:
    created = await _create(client, user, role="guest", expires_in_days=30)
    key = created["key"]
    assert key.startswith("lzr_") and len(key) >= 4 + 43  # 256 bits
    assert key.startswith(created["prefix"]) and len(created["prefix"]) < len(key) // 2
    assert created["role"] == "guest" and created["expires_at"]

    for headers in ({"X-Api-Key": key}, {"Authorization": f"Bearer {key}"}):
        r = await client.get("/api/v1/auth/me", headers=headers)
        assert r.status == 200 and (await r.json())["id"] == user.id

    r = await client.get(KEYS, headers=user.headers)
    page = await r.json()
    assert page["total"] == 1
    listed = page["items"][0]
    assert "key" not in listed and key not in str(page)
    assert listed["last_used_at"]  # it was just used

    async with client.app[DB].execute("SELECT key_hash FROM api_keys") as cur:
        assert [row[0] for row in await cur.fetchall()] == [tokens.sha256_hex(key)]

    r = await client.delete(f"{KEYS}/{created['id']}", headers=user.headers)
    assert r.status == 204
    r = await client.get("/api/v1/auth/me", headers={"X-Api-Key": key})
    assert r.status == 401 and (await error_of(r))["code"] == "token_invalid"
    assert (await (await client.get(KEYS, headers=user.headers)).json())["total"] == 0


async def test_key_role_is_capped_and_enforced(client, user) -> None:
    r = await client.post(KEYS, json={"name": "x", "role": "admin"}, headers=user.headers)
    assert r.status == 422
    assert (await error_of(r))["details"][0]["field"] == "role"
    default = await _create(client, user)
    assert default["role"] == "user"
    guest_key = (await _create(client, user, role="guest"))["key"]
    r = await client.post(
        "/api/v1/auth/api-keys", json={"name": "y"}, headers={"X-Api-Key": guest_key}
    )
    assert (
        r.status == 201 and (await r.json())["role"] == "guest"
    )  # a key makes no more than itself


async def test_other_users_keys_are_not_found(client, user, make_account) -> None:
    other = await make_account("user")
    created = await _create(client, other)
    r = await client.delete(f"{KEYS}/{created['id']}", headers=user.headers)
    assert r.status == 404
    r = await client.delete(f"{KEYS}/999999", headers=user.headers)
    assert r.status == 404
    r = await client.delete(f"{KEYS}/abc", headers=user.headers)
    assert r.status == 404
    r = await client.get("/api/v1/auth/me", headers={"X-Api-Key": created["key"]})
    assert r.status == 200


async def test_expired_key(client, user) -> None:
    created = await _create(client, user, expires_in_days=1)
    await client.app[DB].execute(
        "UPDATE api_keys SET expires_at = '2000-01-01T00:00:00.000Z' WHERE id = ?",
        (created["id"],),
    )
    r = await client.get("/api/v1/auth/me", headers={"X-Api-Key": created["key"]})
    assert r.status == 401 and (await error_of(r))["code"] == "token_expired"


async def test_disabled_or_demoted_owner(client, admin, make_account) -> None:
    owner = await make_account("admin")
    key = (await _create(client, owner))["key"]
    r = await client.get("/api/v1/users", headers={"X-Api-Key": key})
    assert r.status == 200
    r = await client.patch(
        f"/api/v1/users/{owner.id}", json={"role": "user"}, headers=admin.headers
    )
    assert r.status == 200
    r = await client.get("/api/v1/users", headers={"X-Api-Key": key})
    assert r.status == 403  # the key lost what its owner lost
    r = await client.patch(
        f"/api/v1/users/{owner.id}", json={"status": "disabled"}, headers=admin.headers
    )
    assert r.status == 200
    r = await client.get("/api/v1/auth/me", headers={"X-Api-Key": key})
    assert r.status == 401


async def test_garbage_keys(client) -> None:
    for key in ("", "lzr_", "lzr_nonexistent", "not-a-key", "lzr_" + "a" * 400):
        r = await client.get("/api/v1/auth/me", headers={"X-Api-Key": key})
        assert r.status == 401, key


async def test_key_events_are_audited(client, admin) -> None:
    created = await _create(client, admin)
    await client.delete(f"{KEYS}/{created['id']}", headers=admin.headers)
    r = await client.get("/api/v1/audit?event=api_key", headers=admin.headers)
    events = [i["event"] for i in (await r.json())["items"]]
    assert events == ["api_key_revoke", "api_key_create"]


# ---------------------------------------------------------------- keys and account recovery


async def _key_works(client, key: str) -> bool:
    r = await client.get("/api/v1/auth/me", headers={"X-Api-Key": key})
    assert r.status in (200, 401), r.status
    return r.status == 200


async def test_password_reset_revokes_every_api_key(client, user) -> None:
    from tests.api.test_auth_account import reset_token

    keys = [(await _create(client, user, name=f"k{i}"))["key"] for i in range(2)]
    token = await reset_token(client, user.email)
    r = await client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "taken back at last"},
    )
    assert r.status == 204
    assert [await _key_works(client, k) for k in keys] == [False, False]
    audit = [
        e
        for e in (await client.app[DB].execute_fetchall("SELECT event, details_json FROM audit"))
        if e[0] == "api_keys_revoke_all"
    ]
    assert len(audit) == 1 and "password_reset" in audit[0][1]


async def test_logout_all_revokes_api_keys_unless_asked_not_to(client, user, make_account) -> None:
    kept = (await _create(client, user, name="home assistant"))["key"]
    r = await client.post(
        "/api/v1/auth/logout-all", json={"revoke_api_keys": False}, headers=user.headers
    )
    assert r.status == 204
    assert await _key_works(client, kept)
    assert (await client.get("/api/v1/auth/me", headers=user.headers)).status == 401

    # Default (no body at all, as the old clients send it): the keys go too.
    other = await make_account("user")
    gone = (await _create(client, other, name="script"))["key"]
    r = await client.post("/api/v1/auth/logout-all", headers=other.headers)
    assert r.status == 204
    assert not await _key_works(client, gone)
    assert await _key_works(client, kept)  # another account's keys are untouched

    r = await client.post(
        "/api/v1/auth/logout-all", json={"revoke_api_keys": "maybe"}, headers=user.headers
    )
    assert r.status in (401, 422)  # the user's login already ended; never a 500


async def test_change_password_revokes_api_keys_by_default(client, user, make_account) -> None:
    first = (await _create(client, user, name="laptop"))["key"]
    r = await client.post(
        "/api/v1/auth/change-password",
        json={"current_password": user.password, "new_password": "second secret 2"},
        headers=user.headers,
    )
    assert r.status == 204
    assert not await _key_works(client, first)

    second = (await _create(client, user, name="bridge"))["key"]
    r = await client.post(
        "/api/v1/auth/change-password",
        json={
            "current_password": "second secret 2",
            "new_password": "third secret 3",
            "revoke_api_keys": False,
        },
        headers=user.headers,
    )
    assert r.status == 204
    assert await _key_works(client, second)
    page = await (await client.get(KEYS, headers=user.headers)).json()
    assert [k["name"] for k in page["items"]] == ["bridge"]
