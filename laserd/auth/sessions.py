"""Logins: password sign-in, token pairs, refresh rotation with reuse detection, revocation.

A *login* is one row in ``logins`` (a refresh-token family) with its own random signing key.
Its access and refresh tokens are signed with ``HMAC(server_secret, signing_key)`` and name
the login (``lid``), so revoking the row ends the access tokens at once with no deny-list.
Refresh rotates: the row keeps only the hash of the one current refresh token; presenting an
older one with a valid signature means it was copied, and the whole login is revoked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiosqlite

from laserd import errors
from laserd.auth import tokens
from laserd.auth.attempt_limits import LoginFailure, RateLimits, account_key
from laserd.auth.passwords import PasswordHasher
from laserd.auth.principal import Principal, Role
from laserd.db import utcnow
from laserd.origin import current_origin
from laserd.settings import AuthSettings
from laserd.store import logins, users
from laserd.store.audit import AuditLog
from laserd.store.users import UserRow

log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 4096


def iso_in(seconds: float) -> str:
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True, slots=True)
class IssuedPair:
    access_token: str
    refresh_token: str
    access_lifetime_s: int
    refresh_lifetime_s: int
    login_id: str
    user: UserRow


def principal_of(user: UserRow, login_id: str | None = None) -> Principal:
    return Principal(
        user_id=user.id, username=user.username, role=Role(user.role), login_id=login_id
    )


def refuse_inactive(user: UserRow) -> None:
    """403 for a pending or disabled account (said only after the password was right)."""
    if user.status == "pending":
        raise errors.Forbidden(
            "This account is waiting for an administrator's approval.", code="account_pending"
        )
    if user.status != "active":
        raise errors.Forbidden("This account is disabled.", code="account_disabled")


def refuse_locked(limits: RateLimits, account: str, client_ip: str) -> None:
    """423 while this address is locked out of this account (other addresses are not)."""
    locked_s = limits.locked_for(account, client_ip)
    if locked_s > 0:
        wait = max(1, int(locked_s + 0.999))
        raise errors.Locked(
            "Too many failed sign-ins to this account from this address: try again later, "
            "from another device, or ask an administrator to unlock it.",
            headers={"Retry-After": str(wait)},
            details={"retry_after_s": wait},
        )


async def record_password_failure(
    limits: RateLimits,
    audit: AuditLog,
    account: str,
    user: UserRow | None,
    client_ip: str,
) -> LoginFailure:
    """Count a wrong password (sign-in, or the current password of a change) and audit the
    locks it caused."""
    failure = limits.password_failed(account, client_ip)
    if user is not None and failure.locked:
        await audit.record(
            "account_locked",
            target=user.username,
            details={"lock_s": limits.account.lock_s, "address": client_ip},
            origin=current_origin(),
        )
    if user is not None and failure.under_attack:
        log.warning(
            "account %s: more than %d failed sign-ins from all addresses; each address now "
            "gets one wrong try per lock",
            user.username,
            limits.account_slow.limit,
        )
        await audit.record(
            "account_under_attack",
            target=user.username,
            details={
                "failures": limits.account_slow.limit,
                "window_s": limits.account_slow.window_s,
            },
            origin=current_origin(),
        )
    return failure


class Sessions:
    def __init__(
        self,
        conn: aiosqlite.Connection,
        server_secret: bytes,
        auth: AuthSettings,
        hasher: PasswordHasher,
        limits: RateLimits,
        audit: AuditLog,
    ) -> None:
        self._conn = conn
        self._secret = server_secret
        self.auth = auth
        self._hasher = hasher
        self._limits = limits
        self._audit = audit

    def reload(self, auth: AuthSettings) -> None:
        self.auth = auth

    @property
    def access_lifetime_s(self) -> int:
        return int(self.auth.access_token_days * 86400)

    @property
    def refresh_lifetime_s(self) -> int:
        return int(self.auth.refresh_token_days * 86400)

    # ------------------------------------------------------------------ sign-in

    async def login(self, name: str, password: str) -> IssuedPair:
        """Check the password (same path and time for unknown users) and open a login.

        The caller's address (failures are limited per address) and user agent (kept with
        the login) are the current request's :func:`~laserd.origin.current_origin`."""
        origin = current_origin()
        client_ip = origin.address
        self._limits.login_ip.check(client_ip)
        user = await users.by_login_name(self._conn, name)
        key = account_key(user.id if user else None, name)
        refuse_locked(self._limits, key, client_ip)
        ok = await self._hasher.verify(password, user.password_hash if user else None)
        if not ok or user is None:
            self._limits.login_ip.record(client_ip)
            failure = await record_password_failure(
                self._limits, self._audit, key, user, client_ip
            )
            await self._audit.record(
                "login_failed",
                target=name[:254],
                details={"known_user": user is not None, "locked": failure.locked},
                origin=current_origin(),
            )
            raise errors.NotAuthenticated("Wrong username or password.")
        refuse_inactive(user)
        self._limits.password_passed(key, client_ip)
        if self._hasher.needs_rehash(user.password_hash):
            new_hash = await self._hasher.hash(password)
            user = await users.update(self._conn, user.id, password_hash=new_hash) or user
        await users.touch_login(self._conn, user.id)
        pair = await self.open_login(user, client_ip=client_ip, user_agent=origin.user_agent)
        await self._audit.record(
            "login",
            actor=principal_of(user, pair.login_id),
            target=user.username,
            details={"login_id": pair.login_id},
            origin=current_origin(),
        )
        return pair

    async def open_login(self, user: UserRow, *, client_ip: str, user_agent: str) -> IssuedPair:
        """A new login row with a fresh signing key, and its first token pair."""
        login_id = tokens.new_login_id()
        signing_key = tokens.new_signing_key()
        key = tokens.login_key(self._secret, signing_key)
        access, refresh = self._pair(key, user, login_id)
        await logins.insert(
            self._conn,
            login_id=login_id,
            user_id=user.id,
            signing_key=signing_key,
            refresh_hash=tokens.sha256_hex(refresh),
            expires_at=iso_in(self.refresh_lifetime_s),
            client_ip=client_ip[:64],
            user_agent=user_agent[:256],
        )
        fresh = await users.get(self._conn, user.id) or user
        return IssuedPair(
            access, refresh, self.access_lifetime_s, self.refresh_lifetime_s, login_id, fresh
        )

    def _pair(self, key: bytes, user: UserRow, login_id: str) -> tuple[str, str]:
        access, _ = tokens.encode(
            key,
            token_type="access",
            user_id=user.id,
            role=user.role,
            login_id=login_id,
            lifetime_s=self.access_lifetime_s,
        )
        refresh, _ = tokens.encode(
            key,
            token_type="refresh",
            user_id=user.id,
            role=user.role,
            login_id=login_id,
            lifetime_s=self.refresh_lifetime_s,
        )
        return access, refresh

    # ------------------------------------------------------------------ verification

    async def _verified(
        self, token: str, expected: tokens.TokenType
    ) -> tuple[logins.LoginRow, tokens.Claims]:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise errors.TokenInvalid()
        login_id = tokens.login_id_of(token)
        login = await logins.get(self._conn, login_id)
        if login is None:
            raise errors.TokenInvalid()
        claims = tokens.decode(token, tokens.login_key(self._secret, login.signing_key), expected)
        if claims.sub != login.user_id or claims.login_id != login.id:
            raise errors.TokenInvalid()
        if login.revoked_at is not None:
            raise errors.TokenInvalid("This sign-in has ended; sign in again.")
        if login.expires_at <= utcnow():
            raise errors.TokenExpired("This sign-in has expired; sign in again.")
        return login, claims

    async def verify_access(self, token: str) -> Principal:
        login, _ = await self._verified(token, "access")
        user = await users.get(self._conn, login.user_id)
        if user is None or user.status != "active":
            raise errors.TokenInvalid("This account is not active.")
        return principal_of(user, login.id)

    async def refresh(self, token: str) -> IssuedPair:
        """Spend ``token`` for a new pair; a spent token revokes the whole login."""
        login, _ = await self._verified(token, "refresh")
        presented = tokens.sha256_hex(token)
        user = await users.get(self._conn, login.user_id)
        if user is None or user.status != "active":
            await logins.revoke(self._conn, login.id, "account_inactive")
            raise errors.TokenInvalid("This account is not active.")
        if presented != login.refresh_hash:
            await self._reuse(login, user)
        key = tokens.login_key(self._secret, login.signing_key)
        access, refresh = self._pair(key, user, login.id)
        swapped = await logins.rotate(
            self._conn,
            login.id,
            old_hash=presented,
            new_hash=tokens.sha256_hex(refresh),
            expires_at=iso_in(self.refresh_lifetime_s),
        )
        if not swapped:  # another refresh spent it between our read and write: also reuse
            await self._reuse(login, user)
        return IssuedPair(
            access, refresh, self.access_lifetime_s, self.refresh_lifetime_s, login.id, user
        )

    async def _reuse(self, login: logins.LoginRow, user: UserRow) -> None:
        await logins.revoke(self._conn, login.id, "refresh_reuse")
        log.warning("refresh token reuse on login %s of %s: login revoked", login.id, user.username)
        await self._audit.record(
            "refresh_reuse",
            target=user.username,
            details={"login_id": login.id},
            origin=current_origin(),
        )
        raise errors.TokenInvalid(
            "This refresh token was already used; the sign-in has been ended for safety."
        )

    # ------------------------------------------------------------------ revocation

    async def login_of_refresh(self, token: str) -> Principal | None:
        """Whose login a refresh token belongs to, for logout; None when it proves nothing.

        A spent (but genuine) token is accepted here: ending a login is never harmful.
        """
        try:
            login, _ = await self._verified(token, "refresh")
        except errors.NotAuthenticated:
            return None
        user = await users.get(self._conn, login.user_id)
        return principal_of(user, login.id) if user is not None else None

    async def revoke(self, login_id: str, reason: str) -> bool:
        return await logins.revoke(self._conn, login_id, reason)

    async def revoke_user(self, user_id: int, reason: str, *, keep: str | None = None) -> int:
        return await logins.revoke_user(self._conn, user_id, reason, keep=keep)
