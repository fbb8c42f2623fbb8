"""JWTs and opaque secrets: issuing and verifying, with no database access.

Each login has a random ``signing_key`` stored in its row; the HMAC key actually used is
``HMAC-SHA256(server_secret, signing_key)``. So a copy of the database alone cannot forge a
token (the server secret lives in a 0600 file or the config, not in the database), and
revoking one login row kills every token it signed with no deny-list.

Verification is strict: HS256 only (``alg: none`` and every other algorithm are refused
before any key is used), ``exp``/``iat``/``sub``/``type``/``jti`` required, ``iat`` not in
the future, and the ``type`` must be the one the caller expects, so a refresh token is never
accepted as an access token nor the reverse.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from laserd import errors

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "type", "jti"]
#: Clock skew tolerated on ``iat`` (the Pi may have no RTC; NTP can step the clock a little).
IAT_LEEWAY_S = 30
TokenType = Literal["access", "refresh"]
#: Visible prefix of API keys, so a leaked key is recognisable (secret scanners, logs).
API_KEY_PREFIX = "lzr_"


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_login_id() -> str:
    return uuid.uuid4().hex


def new_signing_key() -> bytes:
    return secrets.token_bytes(32)


def new_api_key() -> str:
    """256 random bits, URL-safe, with the visible ``lzr_`` prefix."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_single_use_token() -> str:
    """Password-reset and verification tokens: 256 bits (the brief asks for at least 128)."""
    return secrets.token_urlsafe(32)


def login_key(server_secret: bytes, signing_key: bytes) -> bytes:
    return hmac.new(server_secret, signing_key, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Claims:
    sub: int
    type: TokenType
    jti: str
    iat: int
    exp: int
    login_id: str
    role: str


def encode(
    key: bytes,
    *,
    token_type: TokenType,
    user_id: int,
    role: str,
    login_id: str,
    lifetime_s: float,
    now: float | None = None,
) -> tuple[str, str]:
    """A signed token and its ``jti``."""
    issued = int(time.time() if now is None else now)
    jti = secrets.token_urlsafe(16)
    payload = {
        "sub": str(user_id),
        "role": role,
        "type": token_type,
        "lid": login_id,
        "jti": jti,
        "iat": issued,
        "exp": issued + int(lifetime_s),
    }
    return jwt.encode(payload, key, algorithm=ALGORITHM), jti


def login_id_of(token: str) -> str:
    """The login a token names, read *before* verification only to find the key to verify with.

    Nothing else from the unverified payload is trusted; the header must already say HS256.
    """
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise errors.TokenInvalid("The token's algorithm is not accepted.")
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise errors.TokenInvalid() from None
    lid = payload.get("lid")
    if not isinstance(lid, str) or not lid or len(lid) > 64:
        raise errors.TokenInvalid()
    return lid


def decode(token: str, key: bytes, expected: TokenType, *, now: float | None = None) -> Claims:
    """Verify signature and claims; raise :class:`TokenExpired` or :class:`TokenInvalid`."""
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"require": REQUIRED_CLAIMS, "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise errors.TokenExpired() from None
    except jwt.PyJWTError:
        raise errors.TokenInvalid() from None
    current = time.time() if now is None else now
    iat, exp = payload.get("iat"), payload.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        raise errors.TokenInvalid()
    if iat > current + IAT_LEEWAY_S:
        raise errors.TokenInvalid("The token was issued in the future.")
    if payload.get("type") != expected:
        article = "An" if expected == "access" else "A"
        raise errors.TokenInvalid(f"{article} {expected} token is needed here.")
    sub, jti = payload.get("sub"), payload.get("jti")
    if (
        not isinstance(sub, str)
        or not (sub.isascii() and sub.isdigit())
        or not isinstance(jti, str)
    ):
        raise errors.TokenInvalid()
    return Claims(
        sub=int(sub),
        type=expected,
        jti=jti,
        iat=iat,
        exp=exp,
        login_id=str(payload.get("lid", "")),
        role=str(payload.get("role", "")),
    )
