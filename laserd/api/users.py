"""``/users`` (admin): manage accounts; ``/audit`` (admin): read the audit log."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from laserd.api.auth import user_out
from laserd.api.routing import ApiRoutes, path_id, principal
from laserd.auth.accounts import Accounts
from laserd.auth.principal import Role
from laserd.keys import ACCOUNTS, AUDIT, LIBRARY
from laserd.schemas.users import (
    AuditOut,
    AuditPage,
    AuditQuery,
    UnlockOut,
    UserCreate,
    UserOut,
    UserPage,
    UserPatch,
    UserQuery,
)

routes = ApiRoutes("users")


def _accounts(request: web.Request) -> Accounts:
    return request.app[ACCOUNTS]


@routes.get(
    "/users",
    role=Role.admin,
    query=UserQuery,
    response=UserPage,
    summary="List accounts (filter by role, status, or a search string)",
)
async def list_users(request: web.Request, query: UserQuery) -> UserPage:
    rows, total = await _accounts(request).page(
        limit=query.limit,
        offset=query.offset,
        role=query.role.value if query.role else None,
        status=query.status.value if query.status else None,
        search=query.q,
    )
    return UserPage(
        items=[user_out(u) for u in rows], total=total, limit=query.limit, offset=query.offset
    )


@routes.post(
    "/users",
    role=Role.admin,
    body=UserCreate,
    response=UserOut,
    status=201,
    summary="Create an account",
    errors=(409, 422),
)
async def create_user(request: web.Request, body: UserCreate) -> UserOut:
    fields: dict[str, Any] = body.model_dump(mode="json")
    user = await _accounts(request).admin_create(principal(request), fields)
    return user_out(user)


@routes.get("/users/{id}", role=Role.admin, response=UserOut, summary="One account", errors=(404,))
async def get_user(request: web.Request) -> UserOut:
    return user_out(await _accounts(request).get(path_id(request)))


@routes.patch(
    "/users/{id}",
    role=Role.admin,
    body=UserPatch,
    response=UserOut,
    summary="Change role, status, email, name or password",
    errors=(404, 409, 422),
)
async def patch_user(request: web.Request, body: UserPatch) -> UserOut:
    """A role change, disabling or a new password ends the user's logins. The last active
    admin cannot be demoted or disabled (409 ``last_admin``)."""
    changes = body.model_dump(mode="json", exclude_none=True)
    user = await _accounts(request).admin_update(principal(request), path_id(request), changes)
    return user_out(user)


@routes.delete(
    "/users/{id}",
    role=Role.admin,
    summary="Delete an account (its projects, files and keys go with it)",
    errors=(404, 409),
)
async def delete_user(request: web.Request) -> None:
    """The last active admin cannot be deleted (409 ``last_admin``), nor a user whose file a
    job is streaming (409 ``file_in_use``). Their projects, files and what was made from
    them go too: the rows by cascade, the files on disk here."""
    user_id = path_id(request)

    async def delete_account() -> None:
        await _accounts(request).admin_delete(principal(request), user_id)

    await request.app[LIBRARY].delete_owner(user_id, delete_account)


@routes.post(
    "/users/{id}/unlock",
    role=Role.admin,
    response=UnlockOut,
    summary="Lift a lock after too many failed sign-ins",
    errors=(404,),
)
async def unlock_user(request: web.Request) -> UnlockOut:
    was_locked = await _accounts(request).unlock(principal(request), path_id(request))
    return UnlockOut(was_locked=was_locked)


@routes.get(
    "/audit",
    role=Role.admin,
    query=AuditQuery,
    response=AuditPage,
    summary="The audit log, newest first (filter by event or its prefix, or by actor)",
)
async def audit_log(request: web.Request, query: AuditQuery) -> AuditPage:
    rows, total = await request.app[AUDIT].page(
        limit=query.limit, offset=query.offset, event=query.event, actor_id=query.actor_id
    )
    items = [
        AuditOut(
            id=r.id,
            at=r.at,
            event=r.event,
            actor_id=r.actor_id,
            actor=r.actor,
            target=r.target,
            client_ip=r.client_ip,
            request_id=r.request_id,
            details=r.details,
        )
        for r in rows
    ]
    return AuditPage(items=items, total=total, limit=query.limit, offset=query.offset)
