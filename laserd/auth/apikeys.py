"""API keys for LAN clients: created once, stored hashed, capped at the owner's role.

A key is 256 random bits, so a plain SHA-256 of it is a safe thing to store (no brute force
can walk that space). Verifying a key is one indexed lookup joined with its owner, so a
disabled owner's keys stop working at once and a demoted owner's keys lose the rights the
owner lost. ``last_used_at`` is written at most once a minute per key: a client polling
``GET /machine`` at 5 Hz must not turn into five writes a second on an SD card.
"""

from __future__ import annotations

import time

import aiosqlite

from laserd import errors
from laserd.auth import tokens
from laserd.auth.principal import Principal, Role
from laserd.auth.sessions import iso_in
from laserd.db import utcnow
from laserd.origin import current_origin
from laserd.store import api_keys
from laserd.store.api_keys import ApiKeyRow
from laserd.store.audit import AuditLog

TOUCH_INTERVAL_S = 60.0
PREFIX_CHARS = len(tokens.API_KEY_PREFIX) + 8
_ROLES = {r.value: r for r in (Role.guest, Role.user, Role.admin)}


def _lesser(a: Role, b: Role) -> Role:
    return a if a.rank <= b.rank else b


class ApiKeys:
    def __init__(self, conn: aiosqlite.Connection, audit: AuditLog) -> None:
        self._conn = conn
        self._audit = audit
        self._touched: dict[int, float] = {}

    async def create(
        self,
        owner: Principal,
        *,
        name: str,
        role: Role | None,
        expires_in_days: int | None,
    ) -> tuple[ApiKeyRow, str]:
        """A new key (the secret is returned here and never again)."""
        wanted = role or owner.role
        if not owner.role.allows(wanted):
            raise errors.ValidationFailed.field(
                "role", f"must be at most your own role ({owner.role.value})"
            )
        secret = tokens.new_api_key()
        row = await api_keys.insert(
            self._conn,
            user_id=owner.user_id,
            name=name.strip(),
            prefix=secret[:PREFIX_CHARS],
            key_hash=tokens.sha256_hex(secret),
            role=wanted.value,
            expires_at=iso_in(expires_in_days * 86400) if expires_in_days else None,
        )
        await self._audit.record(
            "api_key_create",
            actor=owner,
            target=f"api_key:{row.id}",
            details={"name": row.name, "role": row.role, "expires_at": row.expires_at},
            origin=current_origin(),
        )
        return row, secret

    async def page(
        self, owner: Principal, *, limit: int, offset: int
    ) -> tuple[list[ApiKeyRow], int]:
        return await api_keys.list_for_user(self._conn, owner.user_id, limit=limit, offset=offset)

    async def revoke(self, owner: Principal, key_id: int) -> None:
        """Revoke one of the caller's own keys; anyone else's is simply not found."""
        row = await api_keys.revoke(self._conn, key_id, owner.user_id)
        if row is None:
            raise errors.NotFound("No such API key.")
        self._touched.pop(key_id, None)
        await self._audit.record(
            "api_key_revoke",
            actor=owner,
            target=f"api_key:{key_id}",
            details={"name": row.name},
            origin=current_origin(),
        )

    async def revoke_all(
        self,
        user_id: int,
        reason: str,
        *,
        actor: Principal | None = None,
        target: str = "",
    ) -> int:
        """Revoke every key of the account (a reset, or a password change or logout-all that
        asked for it): a key minted with a stolen token must not outlive the owner's
        recovery. One audit entry names the keys; the number revoked."""
        rows = await api_keys.revoke_all(self._conn, user_id)
        for row in rows:
            self._touched.pop(row.id, None)
        if rows:
            await self._audit.record(
                "api_keys_revoke_all",
                actor=actor,
                target=target,
                details={"reason": reason, "keys": [f"{r.id}:{r.name}" for r in rows]},
                origin=current_origin(),
            )
        return len(rows)

    async def verify(self, secret: str) -> Principal:
        if not secret.startswith(tokens.API_KEY_PREFIX) or len(secret) > 256:
            raise errors.TokenInvalid("The API key is not valid.")
        found = await api_keys.by_hash(self._conn, tokens.sha256_hex(secret))
        if found is None or found.key.revoked_at is not None:
            raise errors.TokenInvalid("The API key is not valid.")
        if found.key.expires_at is not None and found.key.expires_at <= utcnow():
            raise errors.TokenExpired("The API key has expired.")
        if found.owner_status != "active":
            raise errors.TokenInvalid("The API key's owner is not active.")
        owner_role = _ROLES.get(found.owner_role, Role.guest)
        role = _lesser(_ROLES.get(found.key.role, Role.guest), owner_role)
        await self._touch(found.key.id)
        return Principal(
            user_id=found.key.user_id,
            username=found.username,
            role=role,
            api_key_id=found.key.id,
        )

    async def _touch(self, key_id: int) -> None:
        now = time.monotonic()
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_INTERVAL_S:
            return
        self._touched[key_id] = now
        if len(self._touched) > 10_000:
            self._touched.clear()
        await api_keys.touch(self._conn, key_id)
