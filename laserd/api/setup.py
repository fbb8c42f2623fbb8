"""``/setup``: create the first administrator with the one-time code printed at start."""

from __future__ import annotations

from aiohttp import web

from laserd import errors
from laserd.api.auth import user_out
from laserd.api.routing import ApiRoutes
from laserd.auth.principal import Principal, Role
from laserd.keys import ACCOUNTS, SETUP_CODE
from laserd.origin import current_origin
from laserd.schemas.auth import SetupIn, SetupStatus
from laserd.schemas.users import UserOut

routes = ApiRoutes("system")


@routes.get("/setup", role=Role.public, response=SetupStatus, summary="Is first-run setup needed?")
async def setup_status(request: web.Request) -> SetupStatus:
    return SetupStatus(needed=not await request.app[ACCOUNTS].admin_exists())


@routes.post(
    "/setup",
    role=Role.public,
    body=SetupIn,
    response=UserOut,
    status=201,
    summary="Create the first administrator with the setup code",
    errors=(403, 409, 422, 429),
)
async def setup_create(request: web.Request, body: SetupIn) -> UserOut:
    """403 with a wrong code, and for good once an administrator exists. Wrong codes are
    limited per client address (429 with Retry-After)."""
    accounts = request.app[ACCOUNTS]
    code = request.app[SETUP_CODE]
    if await accounts.admin_exists():
        code.clear()
        raise errors.Forbidden("Setup is closed: an administrator already exists.")
    if not code.attempt(body.setup_code):
        await accounts.audit.record("setup_failed", origin=current_origin())
        raise errors.Forbidden("The setup code is not right.", code="bad_setup_code")
    user = await accounts.create_first_admin(
        code.lock,
        username=body.username,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
    )
    code.clear()
    await accounts.audit.record(
        "setup",
        actor=Principal(user.id, user.username, Role.admin),
        target=user.username,
        origin=current_origin(),
    )
    return user_out(user)
