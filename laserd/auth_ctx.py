"""The accounts layer's cleanup context: builds its services, announces setup, closes them.

Entered right after the database context (see ``laserd.app.CONTEXTS``). Stores:
``RATE_LIMITS``, ``AUDIT``, ``MAILER``, ``ACCOUNTS``, ``AUTHENTICATOR`` and ``SETUP_CODE``.
On a settings reload call ``app[ACCOUNTS].reload(settings)`` (it reloads the rate limits,
bcrypt cost, token lifetimes and mail settings together).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web

from laserd.auth.accounts import Accounts
from laserd.auth.attempt_limits import RateLimits
from laserd.auth.mail import Mailer
from laserd.auth.passwords import PasswordHasher
from laserd.auth.service import Authenticator
from laserd.auth.setup import SetupCode
from laserd.keys import (
    ACCOUNTS,
    AUDIT,
    AUTHENTICATOR,
    DB,
    MAILER,
    RATE_LIMITS,
    SERVER_SECRET,
    SETTINGS,
    SETUP_CODE,
)
from laserd.settings import Settings, public_url
from laserd.store import logins
from laserd.store import tokens as user_tokens
from laserd.store.audit import AuditLog

log = logging.getLogger(__name__)

#: Dead logins and spent tokens are kept this long (for investigation), then deleted.
PURGE_AFTER = timedelta(days=7)


def announce_setup_code(settings: Settings, code: str) -> None:
    """Tell the person at the machine how to create the first admin (log and console)."""
    url = public_url(settings)
    how = (
        f"open {url} and enter it, or run: "
        "laserd create-admin --username U --email E --password-stdin"
    )
    log.warning("no administrator yet; setup code: %s (%s)", code, how)
    print(f"laserd: no administrator yet; setup code: {code} ({how})", flush=True)


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    conn = app[DB]
    limits = RateLimits(settings)
    hasher = PasswordHasher(settings.auth)
    audit = AuditLog(conn)
    mailer = Mailer(conn, settings.mail, debug=settings.server.debug)
    accounts = Accounts(conn, settings, app[SERVER_SECRET], hasher, limits, audit, mailer)
    app[RATE_LIMITS] = limits
    app[AUDIT] = audit
    app[MAILER] = mailer
    app[ACCOUNTS] = accounts
    app[AUTHENTICATOR] = Authenticator(accounts.sessions, accounts.keys)
    setup = SetupCode(limits.setup)
    app[SETUP_CODE] = setup

    cutoff = (datetime.now(UTC) - PURGE_AFTER).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    purged = await logins.purge_dead(conn, cutoff) + await user_tokens.purge_old(conn, cutoff)
    if purged:
        log.info("purged %d dead logins and tokens", purged)
    if not await accounts.admin_exists():
        announce_setup_code(settings, setup.generate())
    # The dummy hash (for unknown-user logins) is made in the background: at cost 12 on a Pi
    # it takes about a second, which start-up (and systemd's READY) need not wait for.
    warm = asyncio.create_task(hasher.warm_up())
    try:
        yield
    finally:
        if not warm.done():
            warm.cancel()
        await accounts.close()
        await mailer.close()
        hasher.close()
