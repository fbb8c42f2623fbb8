"""Access and refresh tokens: tampering, expiry, type confusion, rotation, reuse, revocation."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import warnings

import jwt
import pytest
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from laserd import errors
from laserd.auth import tokens
from laserd.keys import AUTHENTICATOR, DB, SERVER_SECRET
from tests.api.conftest import bearer, error_of

ME = "/api/v1/auth/me"
REFRESH = "/api/v1/auth/refresh"


async def _login_key(client, token: str) -> bytes:
    """The real HMAC key of the login a token names (server secret + the row's key)."""
    lid = jwt.decode(token, options={"verify_signature": False})["lid"]
    async with client.app[DB].execute("SELECT signing_key FROM logins WHERE id = ?", (lid,)) as c:
        row = await c.fetchone()
    return tokens.login_key(client.app[SERVER_SECRET], row[0])


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def _status(client, token: str) -> tuple[int, str]:
    r = await client.get(ME, headers=bearer(token))
    body = await r.json()
    return r.status, body.get("error", {}).get("code", "")


async def test_valid_access_token_works_and_carries_required_claims(client, user) -> None:
    assert await _status(client, user.token) == (200, "")
    claims = _claims(user.token)
    assert {"sub", "role", "type", "jti", "iat", "exp", "lid"} <= set(claims)
    assert claims["type"] == "access" and claims["role"] == "user"
    assert jwt.get_unverified_header(user.token)["alg"] == "HS256"
    assert claims["exp"] - claims["iat"] == 8 * 86400  # default access lifetime


async def test_alg_none_is_refused(client, user) -> None:
    claims = _claims(user.token)
    forged = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + "."
    assert await _status(client, forged) == (401, "token_invalid")


async def test_other_algorithm_with_the_right_key_is_refused(client, user) -> None:
    key = await _login_key(client, user.token)
    with warnings.catch_warnings():  # PyJWT warns that 32 bytes is short for HS512: the point
        warnings.simplefilter("ignore")
        forged = jwt.encode(_claims(user.token), key, algorithm="HS512")
    assert await _status(client, forged) == (401, "token_invalid")


async def test_wrong_key_is_refused(client, user) -> None:
    forged = jwt.encode(_claims(user.token), b"x" * 32, algorithm="HS256")
    assert await _status(client, forged) == (401, "token_invalid")


async def test_the_database_key_alone_cannot_sign(client, user) -> None:
    """Without the server secret, the row's signing key is not the signing key."""
    lid = _claims(user.token)["lid"]
    async with client.app[DB].execute("SELECT signing_key FROM logins WHERE id = ?", (lid,)) as c:
        row = await c.fetchone()
    forged = jwt.encode(_claims(user.token), row[0], algorithm="HS256")
    assert await _status(client, forged) == (401, "token_invalid")


async def test_correctly_signed_but_tampered_claims(client, user, admin) -> None:
    key = await _login_key(client, user.token)
    now = int(time.time())
    base = _claims(user.token)
    expired = dict(base, iat=now - 100, exp=now - 10)
    assert await _status(client, jwt.encode(expired, key, "HS256")) == (401, "token_expired")
    future = dict(base, iat=now + 3600, exp=now + 7200)
    assert await _status(client, jwt.encode(future, key, "HS256")) == (401, "token_invalid")
    other_user = dict(base, sub=str(admin.id), role="admin")
    assert await _status(client, jwt.encode(other_user, key, "HS256")) == (401, "token_invalid")
    for missing in ("exp", "iat", "sub", "type", "jti"):
        partial = {k: v for k, v in base.items() if k != missing}
        assert await _status(client, jwt.encode(partial, key, "HS256")) == (401, "token_invalid")
    # The role claim is informational: the user's current role decides (no escalation).
    boosted = dict(base, role="admin", jti="x")
    r = await client.get("/api/v1/users", headers=bearer(jwt.encode(boosted, key, "HS256")))
    assert r.status == 403


async def test_refresh_token_is_not_an_access_token_nor_the_reverse(client, user) -> None:
    assert await _status(client, user.refresh_token) == (401, "token_invalid")
    r = await client.post(REFRESH, json={"refresh_token": user.token})
    assert r.status == 401 and (await error_of(r))["code"] == "token_invalid"


async def test_garbage_and_malformed_headers(client) -> None:
    for header in ("Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer " + "a" * 5000):
        r = await client.get(ME, headers={"Authorization": header})
        assert r.status == 401, header
        assert r.headers.get("WWW-Authenticate") == "Bearer"
    r = await client.get(ME)
    assert r.status == 401 and (await error_of(r))["code"] == "not_authenticated"


async def test_refresh_rotates_and_reuse_revokes_the_whole_login(client, user) -> None:
    r = await client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert r.status == 200
    pair = await r.json()
    assert pair["refresh_token"] and pair["refresh_token"] != user.refresh_token
    assert pair["token_type"] == "bearer" and pair["user"]["id"] == user.id
    assert await _status(client, pair["access_token"]) == (200, "")
    assert _claims(pair["access_token"])["lid"] == _claims(user.token)["lid"]

    # The spent token again: reuse → 401, and every token of that login dies with it.
    r = await client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert r.status == 401 and (await error_of(r))["code"] == "token_invalid"
    assert await _status(client, pair["access_token"]) == (401, "token_invalid")
    assert await _status(client, user.token) == (401, "token_invalid")
    r = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert r.status == 401


async def test_reuse_is_audited(client, user, admin) -> None:
    r = await client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert r.status == 200
    await client.post(REFRESH, json={"refresh_token": user.refresh_token})
    r = await client.get("/api/v1/audit?event=refresh_reuse", headers=admin.headers)
    items = (await r.json())["items"]
    assert [i["target"] for i in items] == [user.username]


async def test_other_logins_survive_a_reuse(client, user) -> None:
    r = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    second = await r.json()
    await client.post(REFRESH, json={"refresh_token": user.refresh_token})
    await client.post(REFRESH, json={"refresh_token": user.refresh_token})  # reuse
    assert await _status(client, second["access_token"]) == (200, "")


async def test_refresh_needs_a_token(client) -> None:
    r = await client.post(REFRESH, json={})
    assert r.status == 422
    assert (await error_of(r))["details"][0]["field"] == "refresh_token"
    r = await client.post(REFRESH, json={"refresh_token": "nonsense"})
    assert r.status == 401


async def test_expired_refresh_token(client, user) -> None:
    key = await _login_key(client, user.refresh_token)
    now = int(time.time())
    old = dict(_claims(user.refresh_token), iat=now - 100, exp=now - 1)
    r = await client.post(REFRESH, json={"refresh_token": jwt.encode(old, key, "HS256")})
    assert r.status == 401 and (await error_of(r))["code"] == "token_expired"


async def test_logout_ends_this_login_only(client, user) -> None:
    r = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    other = await r.json()
    r = await client.post("/api/v1/auth/logout", headers=user.headers)
    assert r.status == 204
    assert await _status(client, user.token) == (401, "token_invalid")
    r = await client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert r.status == 401
    assert await _status(client, other["access_token"]) == (200, "")


async def test_logout_all_ends_every_login(client, user) -> None:
    r = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    other = await r.json()
    r = await client.post("/api/v1/auth/logout-all", headers=user.headers)
    assert r.status == 204
    assert await _status(client, user.token) == (401, "token_invalid")
    assert await _status(client, other["access_token"]) == (401, "token_invalid")
    r = await client.post(REFRESH, json={"refresh_token": other["refresh_token"]})
    assert r.status == 401


async def test_only_hashes_of_refresh_tokens_are_stored(client, user) -> None:
    async with client.app[DB].execute("SELECT refresh_hash FROM logins") as c:
        stored = [row[0] for row in await c.fetchall()]
    assert user.refresh_token not in stored
    assert tokens.sha256_hex(user.refresh_token) in stored


async def test_racing_refreshes_count_as_reuse(client, user) -> None:
    """Two refreshes with one token: one wins the swap, the other is reuse and ends the login
    (clients must serialise refreshes; the web UI shares one refresh promise for this)."""
    results = await asyncio.gather(
        *(client.post(REFRESH, json={"refresh_token": user.refresh_token}) for _ in range(2))
    )
    assert sorted(r.status for r in results) == [200, 401]
    winner = next(r for r in results if r.status == 200)
    assert await _status(client, (await winner.json())["access_token"]) == (401, "token_invalid")


async def test_login_past_its_expiry_ends_its_tokens(client, user) -> None:
    await client.app[DB].execute("UPDATE logins SET expires_at = '2000-01-01T00:00:00.000Z'")
    assert await _status(client, user.token) == (401, "token_expired")
    r = await client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert r.status == 401


async def test_websocket_style_token_check(client, user) -> None:
    """``principal_from_token`` (the WebSocket's first message) takes JWTs and API keys."""
    auth = client.app[AUTHENTICATOR]
    who = await auth.principal_from_token(user.token)
    assert who.user_id == user.id and who.login_id
    r = await client.post("/api/v1/auth/api-keys", json={"name": "ws"}, headers=user.headers)
    key_who = await auth.principal_from_token((await r.json())["key"])
    assert key_who.user_id == user.id and key_who.api_key_id
    with pytest.raises(errors.TokenInvalid):
        await auth.principal_from_token(user.refresh_token)


async def test_logout_with_a_refresh_token_or_nothing(client, user) -> None:
    r = await client.post("/api/v1/auth/logout", json={"refresh_token": user.refresh_token})
    assert r.status == 204
    assert await _status(client, user.token) == (401, "token_invalid")
    r = await client.post("/api/v1/auth/logout", json={})
    assert r.status == 204  # nothing to end
    r = await client.post("/api/v1/auth/logout", json={}, headers=bearer("junk"))
    assert r.status == 401  # a bad token with nothing else is still an error


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_KEY = b"k" * 32
_GOOD, _ = tokens.encode(
    _KEY, token_type="access", user_id=7, role="user", login_id="abc", lifetime_s=3600
)


def _segments(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)) for s in token.split(".")]


@hypothesis_settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(_GOOD) - 1), char=st.sampled_from(B64URL + "."))
def test_any_single_character_change_is_refused(index: int, char: str) -> None:
    mutated = _GOOD[:index] + char + _GOOD[index + 1 :]
    try:
        same = _segments(mutated) == _segments(_GOOD)
    except ValueError:
        same = False
    assume(not same)  # base64 padding bits can make a change decode to the same bytes
    with pytest.raises(errors.NotAuthenticated):
        tokens.login_id_of(mutated)
        tokens.decode(mutated, _KEY, "access")
