"""Accounts: registration, the first admin, profiles, password changes, administration.

:class:`Accounts` is the service under ``app[ACCOUNTS]``. It owns the business rules on
users (registration policy, who may change what, last-admin protection, which changes end
which logins) and holds the narrower services it is built from: ``sessions`` (sign-in and
tokens), ``keys`` (API keys) and ``recovery`` (reset and verification mail).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiosqlite

from laserd import errors
from laserd.auth.apikeys import ApiKeys
from laserd.auth.attempt_limits import RateLimits, account_key
from laserd.auth.mail import Mailer
from laserd.auth.passwords import PasswordHasher
from laserd.auth.principal import Principal
from laserd.auth.recovery import Recovery
from laserd.auth.sessions import (
    Sessions,
    principal_of,
    record_password_failure,
    refuse_inactive,
    refuse_locked,
)
from laserd.db import utcnow
from laserd.origin import current_origin
from laserd.settings import Registration, Settings
from laserd.store import users
from laserd.store.audit import AuditLog
from laserd.store.users import DuplicateUser, UserRow

log = logging.getLogger(__name__)


def conflict_for(dup: DuplicateUser) -> errors.Conflict:
    if dup.field == "email":
        return errors.Conflict("An account with this email already exists.", code="email_taken")
    return errors.Conflict("This username is taken.", code="username_taken")


class Accounts:
    def __init__(
        self,
        conn: aiosqlite.Connection,
        settings: Settings,
        server_secret: bytes,
        hasher: PasswordHasher,
        limits: RateLimits,
        audit: AuditLog,
        mailer: Mailer,
    ) -> None:
        self._conn = conn
        self.settings = settings
        self.hasher = hasher
        self.limits = limits
        self.audit = audit
        self.mailer = mailer
        self.sessions = Sessions(conn, server_secret, settings.auth, hasher, limits, audit)
        self.keys = ApiKeys(conn, audit)
        self.recovery = Recovery(
            conn, settings, hasher, self.sessions, self.keys, limits, mailer, audit
        )
        #: Serialises changes that could remove the last active admin.
        self._admin_lock = asyncio.Lock()

    def reload(self, settings: Settings) -> None:
        """Apply new settings (SIGHUP): token lifetimes, bcrypt cost, limits, registration."""
        self.settings = settings
        self.hasher.reload(settings.auth)
        self.limits.reload(settings)
        self.sessions.reload(settings.auth)
        self.recovery.reload(settings)
        self.mailer.reload(settings.mail)

    async def close(self) -> None:
        await self.recovery.close()

    # ------------------------------------------------------------------ creation

    async def create_user(
        self,
        *,
        username: str,
        email: str,
        password: str,
        full_name: str = "",
        role: str = "user",
        status: str = "active",
        email_verified: bool = False,
    ) -> UserRow:
        """Validate the password against the settings, hash it off the loop, insert the row."""
        self.hasher.validate_new(password, "password")
        password_hash = await self.hasher.hash(password)
        try:
            return await users.insert(
                self._conn,
                username=username,
                email=email,
                full_name=full_name,
                password_hash=password_hash,
                role=role,
                status=status,
                email_verified=email_verified,
            )
        except DuplicateUser as dup:
            raise conflict_for(dup) from None

    async def admin_exists(self) -> bool:
        return await users.admin_exists(self._conn)

    async def create_first_admin(
        self, lock: asyncio.Lock, *, username: str, email: str, password: str, full_name: str
    ) -> UserRow:
        """The first admin (setup); 403 once any admin exists, even under a race."""
        async with lock:
            if await users.admin_exists(self._conn):
                raise errors.Forbidden("Setup is closed: an administrator already exists.")
            return await self.create_user(
                username=username,
                email=email,
                password=password,
                full_name=full_name,
                role="admin",
                status="active",
                email_verified=True,
            )

    async def register(
        self, *, username: str, email: str, password: str, full_name: str
    ) -> UserRow:
        policy = self.settings.auth.registration
        if policy is Registration.closed:
            raise errors.Forbidden("Registration is closed; ask an administrator for an account.")
        ip = current_origin().address
        self.limits.register_ip.check(ip)
        self.hasher.validate_new(password, "password")
        self.limits.register_ip.record(ip)
        status = "active" if policy is Registration.open else "pending"
        # Hashed first on both paths below, so a taken address costs the same bcrypt time.
        password_hash = await self.hasher.hash(password)
        owner = await users.by_email(self._conn, email)
        if owner is None:
            try:
                user = await users.insert(
                    self._conn,
                    username=username,
                    email=email,
                    full_name=full_name,
                    password_hash=password_hash,
                    role="user",
                    status=status,
                )
            except DuplicateUser as dup:
                if dup.field != "email":
                    raise conflict_for(dup) from None
                owner = await users.by_email(self._conn, email)  # registered meanwhile
            else:
                await self.audit.record(
                    "register",
                    actor=principal_of(user),
                    target=user.username,
                    details={"status": user.status},
                    origin=current_origin(),
                )
                await self.recovery.send_verification(user)
                return user
        if await users.by_login_name(self._conn, username) is not None:
            raise errors.Conflict("This username is taken.", code="username_taken")
        return await self._registered_elsewhere(
            owner, username=username, email=email, full_name=full_name, status=status
        )

    async def _registered_elsewhere(
        self, owner: UserRow | None, *, username: str, email: str, full_name: str, status: str
    ) -> UserRow:
        """A registration with an address that already has an account: no account is made,
        and the answer is the one a new account gets (same status, shape and bcrypt time),
        so registration does not tell who is registered (the reset request does not either).
        The address's owner is told by mail instead, and the attempt is audited.

        What is left: the answer's ``id`` is the one the next account will get, and signing
        in as the new name fails (401) where a real new account answers 403 (``approval``)
        or 200 (``open``). Closing those needs accounts that exist only after their mail is
        confirmed, a change of the registration contract.
        """
        if owner is not None:
            await self.audit.record(
                "register_existing_email",
                target=owner.username,
                details={"attempted_username": username},
                origin=current_origin(),
            )
            await self.recovery.send_account_exists(owner)
        now = utcnow()
        return UserRow(
            id=await users.next_id(self._conn),
            username=username,
            email=email,
            full_name=full_name,
            password_hash="",
            role="user",
            status=status,
            email_verified=False,
            created_at=now,
            updated_at=now,
            last_login_at=None,
        )

    # ------------------------------------------------------------------ profile

    async def get(self, user_id: int) -> UserRow:
        user = await users.get(self._conn, user_id)
        if user is None:
            raise errors.NotFound("No such user.")
        return user

    async def update_profile(
        self,
        who: Principal,
        *,
        email: str | None,
        full_name: str | None,
        current_password: str | None,
    ) -> UserRow:
        """A user's own email and name; a new email must be verified again.

        Changing the email needs the current password (422 on ``current_password`` when it is
        missing or wrong, as ``change-password`` answers): reset mail goes to that address, so
        a stolen access token alone must not be able to redirect it. The change spends every
        outstanding reset and verification token of the account."""
        user = await self.get(who.user_id)
        fields: dict[str, Any] = {}
        if full_name is not None and full_name != user.full_name:
            fields["full_name"] = full_name
        if email is not None and email.casefold() != user.email.casefold():
            fields["email"] = email
            fields["email_verified"] = False
        elif email is not None and email != user.email:
            fields["email"] = email  # only the letter case changed: still the same mailbox
        if not fields:
            return user
        new_mailbox = "email_verified" in fields
        if new_mailbox:
            await self._check_current_password(user, current_password)
        updated = await self._update(user.id, fields)
        if new_mailbox:
            await self.recovery.spend_tokens(user.id)
        await self.audit.record(
            "profile_update",
            actor=who,
            target=user.username,
            details={"fields": sorted(fields)},
            origin=current_origin(),
        )
        return updated

    async def change_password(
        self,
        who: Principal,
        *,
        current: str,
        new: str,
        revoke_api_keys: bool,
    ) -> int:
        """Needs the current password; every other login of the user ends, and with
        ``revoke_api_keys`` every API key too. Logins revoked."""
        self.hasher.validate_new(new, "new_password")
        user = await self.get(who.user_id)
        await self._check_current_password(user, current)
        await self._update(user.id, {"password_hash": await self.hasher.hash(new)})
        await self.recovery.spend_tokens(user.id)
        revoked = await self.sessions.revoke_user(user.id, "password_change", keep=who.login_id)
        keys_revoked = 0
        if revoke_api_keys:
            keys_revoked = await self.keys.revoke_all(
                user.id, "password_change", actor=who, target=user.username
            )
        await self.audit.record(
            "password_change",
            actor=who,
            target=user.username,
            details={"logins_revoked": revoked, "api_keys_revoked": keys_revoked},
            origin=current_origin(),
        )
        return revoked

    async def logout_all(self, who: Principal, *, revoke_api_keys: bool) -> int:
        """End every login of the caller, and with ``revoke_api_keys`` every API key."""
        revoked = await self.sessions.revoke_user(who.user_id, "logout_all")
        keys_revoked = 0
        if revoke_api_keys:
            keys_revoked = await self.keys.revoke_all(
                who.user_id, "logout_all", actor=who, target=who.username
            )
        await self.audit.record(
            "logout_all",
            actor=who,
            target=who.username,
            details={"logins_revoked": revoked, "api_keys_revoked": keys_revoked},
            origin=current_origin(),
        )
        return revoked

    async def _check_current_password(self, user: UserRow, password: str | None) -> None:
        """422 on ``current_password`` unless it is given and right.

        A wrong one counts like a failed sign-in from this address (and 423 once the address
        is locked out of the account): a stolen access token must not turn these calls into
        an unthrottled password oracle."""
        if not password:
            raise errors.ValidationFailed.field(
                "current_password", "is required to change the email address"
            )
        client_ip = current_origin().address
        key = account_key(user.id, "")
        refuse_locked(self.limits, key, client_ip)
        if not await self.hasher.verify(password, user.password_hash):
            await record_password_failure(self.limits, self.audit, key, user, client_ip)
            raise errors.ValidationFailed.field("current_password", "is not correct")

    async def _update(self, user_id: int, fields: dict[str, Any]) -> UserRow:
        try:
            updated = await users.update(self._conn, user_id, **fields)
        except DuplicateUser as dup:
            raise conflict_for(dup) from None
        if updated is None:
            raise errors.NotFound("No such user.")
        return updated

    # ------------------------------------------------------------------ administration

    async def page(
        self,
        *,
        limit: int,
        offset: int,
        role: str | None,
        status: str | None,
        search: str | None,
    ) -> tuple[list[UserRow], int]:
        return await users.list_page(
            self._conn, limit=limit, offset=offset, role=role, status=status, search=search
        )

    async def admin_create(self, actor: Principal, fields: dict[str, Any]) -> UserRow:
        user = await self.create_user(**fields)
        await self.audit.record(
            "user_create",
            actor=actor,
            target=user.username,
            details={"role": user.role, "status": user.status},
            origin=current_origin(),
        )
        return user

    async def admin_update(
        self, actor: Principal, user_id: int, changes: dict[str, Any]
    ) -> UserRow:
        """Role, status, email, name, password. Ends the user's logins when their role,
        status or password changes; refuses (409) to remove the last active admin."""
        password = changes.pop("password", None)
        if password is not None:
            self.hasher.validate_new(password, "password")
        async with self._admin_lock:
            user = await self.get(user_id)
            fields = {k: v for k, v in changes.items() if v is not None and getattr(user, k) != v}
            if "email" in fields and fields["email"].casefold() != user.email.casefold():
                fields.setdefault("email_verified", False)
            await self._guard_last_admin(
                user, fields.get("role", user.role), fields.get("status", user.status)
            )
            if password is not None:
                fields["password_hash"] = await self.hasher.hash(password)
            if not fields:
                return user
            updated = await self._update(user.id, fields)
        revoke_reason = _revoke_reason(fields)
        if "password_hash" in fields or "email" in fields:
            await self.recovery.spend_tokens(user.id)
        revoked = 0
        if revoke_reason is not None:
            revoked = await self.sessions.revoke_user(user.id, revoke_reason)
        await self._audit_admin_update(actor, user, updated, fields)
        if revoked:
            log.info("%d login(s) of %s revoked: %s", revoked, user.username, revoke_reason)
        return updated

    async def _audit_admin_update(
        self, actor: Principal, user: UserRow, updated: UserRow, fields: dict[str, Any]
    ) -> None:
        """The audit entries of one administrator's change: role and status each on their
        own (from → to), the other fields by name (never their values)."""
        if "role" in fields:
            await self.audit.record(
                "role_change",
                actor=actor,
                target=user.username,
                details={"from": user.role, "to": updated.role},
                origin=current_origin(),
            )
        if "status" in fields:
            await self.audit.record(
                "status_change",
                actor=actor,
                target=user.username,
                details={"from": user.status, "to": updated.status},
                origin=current_origin(),
            )
        other = sorted(set(fields) - {"role", "status", "password_hash"})
        if other or "password_hash" in fields:
            await self.audit.record(
                "user_update",
                actor=actor,
                target=user.username,
                details={"fields": other, "password_set": "password_hash" in fields},
                origin=current_origin(),
            )

    async def admin_delete(self, actor: Principal, user_id: int) -> None:
        async with self._admin_lock:
            user = await self.get(user_id)
            await self._guard_last_admin(user, "deleted", "deleted")
            await users.delete(self._conn, user.id)
        await self.audit.record(
            "user_delete",
            actor=actor,
            target=user.username,
            details={"user_id": user.id, "role": user.role},
            origin=current_origin(),
        )

    async def unlock(self, actor: Principal, user_id: int) -> bool:
        user = await self.get(user_id)
        was_locked = self.limits.unlock_user(user.id)
        await self.audit.record(
            "user_unlock",
            actor=actor,
            target=user.username,
            details={"was_locked": was_locked},
            origin=current_origin(),
        )
        return was_locked

    async def _guard_last_admin(self, user: UserRow, new_role: str, new_status: str) -> None:
        stays_admin = new_role == "admin" and new_status == "active"
        was_admin = user.role == "admin" and user.status == "active"
        if was_admin and not stays_admin and await users.count_active_admins(self._conn) <= 1:
            raise errors.Conflict(
                "This is the last active administrator; make another one first.",
                code="last_admin",
            )

    # ------------------------------------------------------------------ helpers for handlers

    async def active_user(self, who: Principal) -> UserRow:
        user = await self.get(who.user_id)
        refuse_inactive(user)
        return user


def _revoke_reason(fields: dict[str, Any]) -> str | None:
    """Why a change ends the user's logins (the audit's reason), or None when it does not."""
    if "role" in fields:
        return "role_change"
    if fields.get("status") in ("disabled", "pending"):
        return f"status_{fields['status']}"
    if "password_hash" in fields:
        return "password_set"
    return None
