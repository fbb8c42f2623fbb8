"""Password reset and email verification through single-use mailed tokens.

A completed reset ends every login and revokes every API key of the account, and spends its
other reset and verification tokens: it is how an owner takes a stolen account back.

Tokens are 256 random bits; only their SHA-256 is stored, with a purpose, the address it was
sent to and an expiry (reset: 1 hour; verification: 2 days). Spending one is a single guarded
``UPDATE``, so it works once. A reset request always answers 202 and does its work in the
background, so neither the answer nor its timing says whether the address has an account.
"""

from __future__ import annotations

import asyncio
import logging

import aiosqlite

from laserd import errors
from laserd.auth import tokens
from laserd.auth.apikeys import ApiKeys
from laserd.auth.attempt_limits import RateLimits
from laserd.auth.mail import Mailer
from laserd.auth.passwords import PasswordHasher
from laserd.auth.principal import Principal
from laserd.auth.sessions import Sessions, iso_in, principal_of
from laserd.origin import RequestOrigin, current_origin
from laserd.settings import Settings, public_url
from laserd.store import tokens as user_tokens
from laserd.store import users
from laserd.store.audit import AuditLog
from laserd.store.users import UserRow

log = logging.getLogger(__name__)

RESET_LIFETIME_S = 3600
VERIFY_LIFETIME_S = 2 * 86400
RESET, VERIFY = "password_reset", "verify_email"
ACCOUNT_EXISTS = "account_exists"


class Recovery:
    def __init__(
        self,
        conn: aiosqlite.Connection,
        settings: Settings,
        hasher: PasswordHasher,
        sessions: Sessions,
        keys: ApiKeys,
        limits: RateLimits,
        mailer: Mailer,
        audit: AuditLog,
    ) -> None:
        self._conn = conn
        self.settings = settings
        self._hasher = hasher
        self._sessions = sessions
        self._keys = keys
        self._limits = limits
        self._mailer = mailer
        self._audit = audit
        self._tasks: set[asyncio.Task[None]] = set()

    def reload(self, settings: Settings) -> None:
        self.settings = settings

    # ------------------------------------------------------------------ password reset

    def request_reset(self, email: str) -> None:
        """Schedule the reset mail (if the address has an account); returns at once.

        Every request counts against the caller's address (429 past the limit), known
        address or not, so the answer's timing and status tell nothing about accounts."""
        origin = current_origin()
        self._limits.mail_ip.hit(origin.address)
        task = asyncio.create_task(self._reset_mail(email.strip(), origin))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reset_mail(self, email: str, origin: RequestOrigin) -> None:
        try:
            user = await users.by_email(self._conn, email)
            if user is None or user.status == "disabled":
                log.info("password reset requested for an address with no usable account")
                return
            account = f"user:{user.id}"
            if self._limits.mail_account.blocked(account):
                log.warning("password reset mail for %s skipped: too many requests", user.username)
                return
            self._limits.mail_account.record(account)
            token = await self._issue(user, RESET, RESET_LIFETIME_S, spend_older=True)
            link = f"{public_url(self.settings)}#/reset-password?token={token}"
            await self._mailer.send(
                user.email,
                "laserd: reset your password",
                f"Hello {user.full_name or user.username},\n\n"
                "Someone (hopefully you) asked to reset the password of your laserd account "
                f"'{user.username}'.\nOpen this link within an hour to choose a new one:\n\n"
                f"  {link}\n\nor give this token to POST /api/v1/auth/password-reset/confirm:\n"
                f"  {token}\n\nIf it was not you, ignore this message; nothing has changed.\n",
                kind=RESET,
                secrets=(token,),
            )
            await self._audit.record("password_reset_request", target=user.username, origin=origin)
        except Exception:
            log.exception("password reset mail failed")

    async def confirm_reset(self, token: str, new_password: str) -> None:
        """Set a new password with a mailed token; every login of the account ends."""
        self._hasher.validate_new(new_password, "new_password")
        spent = await user_tokens.consume(
            self._conn, purpose=RESET, token_hash=tokens.sha256_hex(token)
        )
        if spent is None:
            raise errors.ValidationFailed.field("token", "is invalid, expired or already used")
        user = await users.get(self._conn, spent.user_id)
        if user is None or user.status == "disabled":
            raise errors.ValidationFailed.field("token", "is invalid, expired or already used")
        password_hash = await self._hasher.hash(new_password)
        fields: dict[str, object] = {"password_hash": password_hash}
        if spent.email.casefold() == user.email.casefold():
            fields["email_verified"] = True  # the mailbox owner just proved it
        # Two autocommit statements, not a transaction: the daemon shares one connection, and
        # a BEGIN held across awaits would swallow other coroutines' statements. Either order
        # of failure is harmless (the token used is already spent by ``consume``).
        await users.update(self._conn, user.id, **fields)
        await self.spend_tokens(user.id)
        revoked = await self._sessions.revoke_user(user.id, "password_reset")
        # A reset is how an owner takes the account back: keys minted meanwhile must die too.
        keys_revoked = await self._keys.revoke_all(
            user.id,
            "password_reset",
            actor=principal_of(user),
            target=user.username,
        )
        self._limits.unlock_user(user.id)
        await self._audit.record(
            "password_reset",
            actor=principal_of(user),
            target=user.username,
            details={"logins_revoked": revoked, "api_keys_revoked": keys_revoked},
            origin=current_origin(),
        )

    # ------------------------------------------------------------------ email verification

    async def request_verification(self, who: Principal) -> bool:
        """Mail a verification link; False when there was nothing to do (already verified)."""
        user = await users.get(self._conn, who.user_id)
        if user is None:
            raise errors.NotFound()
        if user.email_verified:
            return False
        account = f"user:{user.id}"
        self._limits.mail_account.check(account)
        self._limits.mail_account.record(account)
        await self.send_verification(user)
        return True

    async def send_verification(self, user: UserRow) -> None:
        token = await self._issue(user, VERIFY, VERIFY_LIFETIME_S, spend_older=True)
        link = f"{public_url(self.settings)}#/verify-email?token={token}"
        await self._mailer.send(
            user.email,
            "laserd: confirm your email address",
            f"Hello {user.full_name or user.username},\n\nConfirm that {user.email} belongs to "
            f"the laserd account '{user.username}' by opening this link within two days:\n\n"
            f"  {link}\n\nor give this token to POST /api/v1/auth/verify-email/confirm:\n"
            f"  {token}\n",
            kind=VERIFY,
            secrets=(token,),
        )

    async def send_account_exists(self, owner: UserRow) -> None:
        """Tell an address's owner that someone tried to register with it (no token inside).

        Limited like reset mail (per account per hour) but counted apart from it, so these
        attempts cannot use up the owner's reset mails: past the limit the registration
        still answers the same, but no further mail goes out."""
        account = f"exists:{owner.id}"
        if self._limits.mail_account.blocked(account):
            log.warning("'account exists' mail for %s skipped: too many", owner.username)
            return
        self._limits.mail_account.record(account)
        base = public_url(self.settings)
        await self._mailer.send(
            owner.email,
            "laserd: someone tried to create an account with your address",
            f"Hello {owner.full_name or owner.username},\n\nSomeone asked to create a new laserd "
            f"account with this email address, which already belongs to the account "
            f"'{owner.username}'. No new account was made.\n\nIf it was you, sign in as "
            f"'{owner.username}' at {base}#/login, or reset your password there if you have "
            "forgotten it.\nIf it was not you, ignore this message; nothing has changed.\n",
            kind=ACCOUNT_EXISTS,
        )

    async def confirm_verification(self, token: str) -> None:
        spent = await user_tokens.consume(
            self._conn, purpose=VERIFY, token_hash=tokens.sha256_hex(token)
        )
        if spent is None:
            raise errors.ValidationFailed.field("token", "is invalid, expired or already used")
        user = await users.get(self._conn, spent.user_id)
        if user is None or spent.email.casefold() != user.email.casefold():
            # The address changed since the mail went out: this token proves nothing now.
            raise errors.ValidationFailed.field("token", "is invalid, expired or already used")
        await users.update(self._conn, user.id, email_verified=True)
        await self._audit.record(
            "email_verified",
            actor=principal_of(user),
            target=user.username,
            details={"email": user.email},
            origin=current_origin(),
        )

    # ------------------------------------------------------------------ common

    async def spend_tokens(self, user_id: int) -> int:
        """Spend every outstanding reset and verification token of the account.

        Called whenever its email or password changes: a reset link mailed to the old
        address, or issued before the owner took the account back, must not outlive that
        change (it would hand the account to whoever reads the old mailbox)."""
        return await user_tokens.spend_all(self._conn, user_id, None)

    async def _issue(
        self, user: UserRow, purpose: str, lifetime_s: int, *, spend_older: bool
    ) -> str:
        token = tokens.new_single_use_token()
        if spend_older:  # a crash between the two statements only loses an unsent link
            await user_tokens.spend_all(self._conn, user.id, purpose)
        await user_tokens.insert(
            self._conn,
            user_id=user.id,
            purpose=purpose,
            token_hash=tokens.sha256_hex(token),
            email=user.email,
            expires_at=iso_in(lifetime_s),
        )
        return token

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for task in list(self._tasks):
            task.cancel()
