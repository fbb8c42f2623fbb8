"""``laserd create-admin``: an administrator from the command line (first run or recovery).

Whoever can run this on the device already owns it, so unlike ``POST /setup`` it also works
when an admin exists (for example to regain access); it refuses a taken username or email.
"""

from __future__ import annotations

import asyncio
import sys

from pydantic import ValidationError

from laserd import errors
from laserd.auth.passwords import PasswordHasher
from laserd.auth.principal import Principal, Role
from laserd.db import MigrationError, open_database
from laserd.schemas.users import UserCreate, UserRole
from laserd.settings import Settings, ensure_state_dirs
from laserd.store import users
from laserd.store.audit import AuditLog
from laserd.store.users import DuplicateUser


async def _create(settings: Settings, body: UserCreate) -> int:
    ensure_state_dirs(settings)
    conn = await open_database(settings.db_path)
    hasher = PasswordHasher(settings.auth)
    try:
        hasher.validate_new(body.password, "password")
        try:
            user = await users.insert(
                conn,
                username=body.username,
                email=body.email,
                full_name=body.full_name,
                password_hash=await hasher.hash(body.password),
                role="admin",
                status="active",
                email_verified=True,
            )
        except DuplicateUser as dup:
            print(
                f"laserd: cannot create the administrator: that {dup.field} is already taken",
                file=sys.stderr,
            )
            return 1
        await AuditLog(conn).record(
            "user_create",
            actor=Principal(user.id, user.username, Role.admin),
            target=user.username,
            details={"role": "admin", "via": "create-admin"},
        )
    finally:
        hasher.close()
        await conn.close()
    print(f"laserd: administrator {user.username!r} created (id {user.id}); sign in with it now")
    return 0


def create_admin_cli(
    settings: Settings, username: str, email: str, password: str, full_name: str
) -> int:
    """Exit status: 0 created, 1 refused (duplicate, invalid input, database trouble)."""
    try:
        body = UserCreate(
            username=username,
            email=email,
            password=password,
            full_name=full_name,
            role=UserRole.admin,
        )
    except ValidationError as exc:
        for d in errors.validation_details(exc):
            print(f"laserd: {d['field']}: {d['message']}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_create(settings, body))
    except errors.ValidationFailed as exc:
        print(f"laserd: {exc.message}", file=sys.stderr)
        return 1
    except (MigrationError, OSError) as exc:
        print(f"laserd: {exc}", file=sys.stderr)
        return 1
