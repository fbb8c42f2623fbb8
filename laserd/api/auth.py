"""``/auth``: register, login, refresh, logout, profile, passwords, verification, API keys.

Browser cookie mode: when ``POST /auth/login``, ``/auth/refresh`` or ``/auth/logout`` carries
``X-Refresh-Cookie: 1``, the refresh token travels as the HttpOnly, SameSite=Strict cookie
``laserd_refresh`` scoped to ``/api/v1/auth`` and the body's ``refresh_token`` is empty.
CSRF defence for the one call that *reads* the cookie (refresh): the custom header is required
(a cross-site form cannot send it and a CORS preflight only passes for configured origins),
and an ``Origin`` header, when present, must be this host or a configured CORS origin.
"""

from __future__ import annotations

from typing import TypedDict
from urllib.parse import urlsplit

from aiohttp import web

from laserd import errors
from laserd.api.routing import (
    API_PREFIX,
    ApiRoutes,
    authenticate,
    json_response,
    path_id,
    principal,
)
from laserd.auth.accounts import Accounts
from laserd.auth.principal import Principal, Role
from laserd.auth.sessions import IssuedPair
from laserd.keys import ACCOUNTS, SETTINGS
from laserd.origin import current_origin
from laserd.schemas.auth import (
    Accepted,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyPage,
    ChangePasswordIn,
    LoginIn,
    LogoutAllIn,
    LogoutIn,
    ProfilePatch,
    RefreshIn,
    RegisterIn,
    ResetConfirmIn,
    ResetRequestIn,
    TokenIn,
    TokenPair,
)
from laserd.schemas.common import PageQuery
from laserd.schemas.users import UserOut, UserRole, UserStatus
from laserd.store.api_keys import ApiKeyRow
from laserd.store.users import UserRow

routes = ApiRoutes("auth")

COOKIE_NAME = "laserd_refresh"
COOKIE_PATH = API_PREFIX + "/auth"
COOKIE_HEADER = "X-Refresh-Cookie"


def user_out(user: UserRow) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        email=user.email,
        full_name=user.full_name,
        role=UserRole(user.role),
        status=UserStatus(user.status),
        email_verified=user.email_verified,
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_login_at=user.last_login_at,
    )


def key_out(row: ApiKeyRow) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        role=UserRole(row.role),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
    )


def _accounts(request: web.Request) -> Accounts:
    return request.app[ACCOUNTS]


def cookie_mode(request: web.Request) -> bool:
    return request.headers.get(COOKIE_HEADER) == "1"


class _CookieFlags(TypedDict):
    path: str
    httponly: bool
    samesite: str
    secure: bool


def _cookie_flags(request: web.Request) -> _CookieFlags:
    return {
        "path": COOKIE_PATH,
        "httponly": True,
        "samesite": "Strict",
        "secure": request.app[SETTINGS].auth.cookie_secure,
    }


def clear_cookie_header(request: web.Request) -> str:
    secure = "; Secure" if request.app[SETTINGS].auth.cookie_secure else ""
    return f'{COOKIE_NAME}=""; Max-Age=0; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict{secure}'


def check_origin(request: web.Request) -> None:
    """Refuse a cookie-reading call from a foreign page (see the module docstring)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if origin in request.app[SETTINGS].server.cors_origins:
        return
    if origin != "null" and urlsplit(origin).netloc.lower() == request.host.lower():
        return
    raise errors.Forbidden("This origin may not use the sign-in cookie.", code="bad_origin")


def _pair_response(request: web.Request, pair: IssuedPair) -> web.Response:
    use_cookie = cookie_mode(request)
    body = TokenPair(
        access_token=pair.access_token,
        refresh_token="" if use_cookie else pair.refresh_token,
        expires_in=pair.access_lifetime_s,
        refresh_expires_in=pair.refresh_lifetime_s,
        user=user_out(pair.user),
    )
    response = json_response(body.model_dump(mode="json"))
    if use_cookie:
        response.set_cookie(
            COOKIE_NAME,
            pair.refresh_token,
            max_age=pair.refresh_lifetime_s,
            **_cookie_flags(request),
        )
    return response


# ---------------------------------------------------------------------------- sign-in


@routes.post(
    "/auth/register",
    role=Role.public,
    body=RegisterIn,
    response=UserOut,
    status=201,
    summary="Create an account (per the registration setting; a taken email is not revealed)",
    errors=(403, 409, 422, 429),
)
async def register(request: web.Request, body: RegisterIn) -> UserOut:
    """``closed``: 403. ``approval``: the account is ``pending`` until an admin activates it.
    ``open``: ``active`` at once. A verification mail goes out either way.

    A taken username is 409 ``username_taken``. A taken email is not told apart: the answer
    is the 201 a new account gets, no account is made, and the address's owner is mailed
    about the attempt instead (the reset request does not reveal addresses either)."""
    user = await _accounts(request).register(
        username=body.username,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
    )
    return user_out(user)


@routes.post(
    "/auth/login",
    role=Role.public,
    body=LoginIn,
    response=TokenPair,
    summary="Sign in with username (or email) and password",
    errors=(401, 403, 422, 423, 429),
)
async def login(request: web.Request, body: LoginIn) -> web.Response:
    """Unknown user and wrong password give the same 401 in the same time. Pending or
    disabled accounts: 403 (only once the password is right). Too many failures from one
    address: 429 with Retry-After; too many on one account: 423 until it unlocks."""
    pair = await _accounts(request).sessions.login(body.username.strip(), body.password)
    return _pair_response(request, pair)


@routes.post(
    "/auth/refresh",
    role=Role.public,
    body=RefreshIn,
    response=TokenPair,
    summary="Spend a refresh token for a new token pair",
    errors=(401, 403, 422),
)
async def refresh(request: web.Request, body: RefreshIn) -> web.Response:
    """The old refresh token is spent; presenting a spent one ends that whole login."""
    token = body.refresh_token
    from_cookie = False
    if not token and cookie_mode(request):
        check_origin(request)
        token = request.cookies.get(COOKIE_NAME, "")
        from_cookie = True
        if not token:
            raise errors.NotAuthenticated("No sign-in cookie; sign in again.")
    elif not token:
        raise errors.ValidationFailed.field(
            "refresh_token", "is required (or send X-Refresh-Cookie: 1 with the cookie)"
        )
    try:
        pair = await _accounts(request).sessions.refresh(token)
    except errors.NotAuthenticated as exc:
        if from_cookie:
            exc.headers["Set-Cookie"] = clear_cookie_header(request)
        raise
    return _pair_response(request, pair)


@routes.post(
    "/auth/logout",
    role=Role.public,
    body=LogoutIn,
    summary="End the current login (its refresh token and access tokens)",
    errors=(401, 403),
)
async def logout(request: web.Request, body: LogoutIn) -> web.Response:
    """The login is found from the access token (``Authorization``), else from a refresh
    token (the body's, or the cookie with ``X-Refresh-Cookie: 1``), so signing out works
    even when the access token has expired. Nothing to end: 204 all the same."""
    accounts = _accounts(request)
    use_cookie = cookie_mode(request)
    who: Principal | None = None
    if "Authorization" in request.headers or "X-Api-Key" in request.headers:
        try:
            who = await authenticate(request)
        except errors.NotAuthenticated:
            if not (use_cookie or body.refresh_token):
                raise
    if who is None or who.login_id is None:
        token = body.refresh_token
        if not token and use_cookie:
            check_origin(request)
            token = request.cookies.get(COOKIE_NAME, "")
        found = await accounts.sessions.login_of_refresh(token) if token else None
        if found is not None:
            who = found
    if who is not None and who.login_id is not None:
        await accounts.sessions.revoke(who.login_id, "logout")
        await accounts.audit.record(
            "logout",
            actor=who,
            target=who.username,
            details={"login_id": who.login_id},
            origin=current_origin(),
        )
    response = web.Response(status=204)
    if use_cookie:
        response.del_cookie(COOKIE_NAME, path=COOKIE_PATH)
    return response


@routes.post(
    "/auth/logout-all",
    role=Role.guest,
    body=LogoutAllIn,
    summary="End every login of the caller (and its API keys unless asked not to)",
    errors=(422,),
)
async def logout_all(request: web.Request, body: LogoutAllIn) -> web.Response:
    """Every login ends; with ``revoke_api_keys`` (the default, also for an empty body)
    every API key of the account is revoked too. ``GET /auth/api-keys`` lists what is left."""
    await _accounts(request).logout_all(
        principal(request), revoke_api_keys=body.revoke_api_keys
    )
    response = web.Response(status=204)
    if cookie_mode(request):
        response.del_cookie(COOKIE_NAME, path=COOKIE_PATH)
    return response


# ---------------------------------------------------------------------------- profile


@routes.get("/auth/me", role=Role.guest, response=UserOut, summary="The caller's profile")
async def me(request: web.Request) -> UserOut:
    return user_out(await _accounts(request).get(principal(request).user_id))


@routes.patch(
    "/auth/me",
    role=Role.guest,
    body=ProfilePatch,
    response=UserOut,
    summary="Change the caller's email or full name",
    errors=(409, 422, 423),
)
async def patch_me(request: web.Request, body: ProfilePatch) -> UserOut:
    """Role and status are not changeable here (unknown fields are refused with 422).
    A new email address needs ``current_password`` (422 on that field when missing or
    wrong; 423 once too many wrong ones from this address locked it out of the account, as
    for sign-in), is unverified until confirmed again, and spends every outstanding reset
    and verification token of the account."""
    user = await _accounts(request).update_profile(
        principal(request),
        email=body.email,
        full_name=body.full_name,
        current_password=body.current_password,
    )
    return user_out(user)


@routes.post(
    "/auth/change-password",
    role=Role.guest,
    body=ChangePasswordIn,
    summary="Change the caller's password (other logins end; API keys unless asked not to)",
    errors=(422, 423),
)
async def change_password(request: web.Request, body: ChangePasswordIn) -> None:
    """Other logins end. ``revoke_api_keys`` (default true) revokes every API key too:
    changing the password is how a signed-in owner recovers from a stolen token, and a key
    minted with it would otherwise outlive that. ``GET /auth/api-keys`` lists what is left.
    A wrong ``current_password`` counts as a failed sign-in from this address (423 once
    locked out), so a stolen access token cannot guess the password here unthrottled."""
    await _accounts(request).change_password(
        principal(request),
        current=body.current_password,
        new=body.new_password,
        revoke_api_keys=body.revoke_api_keys,
    )


# ---------------------------------------------------------------------------- recovery


@routes.post(
    "/auth/password-reset/request",
    role=Role.public,
    body=ResetRequestIn,
    response=Accepted,
    status=202,
    summary="Mail a password-reset link (202 whether or not the address is known)",
    errors=(422, 429),
)
async def reset_request(request: web.Request, body: ResetRequestIn) -> Accepted:
    _accounts(request).recovery.request_reset(body.email)
    return Accepted(message="If the address belongs to an account, a reset link is on its way.")


@routes.post(
    "/auth/password-reset/confirm",
    role=Role.public,
    body=ResetConfirmIn,
    summary="Set a new password with a mailed token (all logins end)",
    errors=(422,),
)
async def reset_confirm(request: web.Request, body: ResetConfirmIn) -> None:
    await _accounts(request).recovery.confirm_reset(body.token, body.new_password)


@routes.post(
    "/auth/verify-email/request",
    role=Role.guest,
    response=Accepted,
    status=202,
    summary="Mail a link that confirms the caller's email address",
    errors=(429,),
)
async def verify_request(request: web.Request) -> Accepted:
    sent = await _accounts(request).recovery.request_verification(principal(request))
    message = "A confirmation link is on its way." if sent else "The address is already verified."
    return Accepted(message=message)


@routes.post(
    "/auth/verify-email/confirm",
    role=Role.public,
    body=TokenIn,
    summary="Confirm an email address with a mailed token",
    errors=(422,),
)
async def verify_confirm(request: web.Request, body: TokenIn) -> None:
    await _accounts(request).recovery.confirm_verification(body.token)


# ---------------------------------------------------------------------------- API keys


@routes.get(
    "/auth/api-keys",
    role=Role.guest,
    query=PageQuery,
    response=ApiKeyPage,
    summary="The caller's API keys (never the secrets)",
)
async def list_keys(request: web.Request, query: PageQuery) -> ApiKeyPage:
    rows, total = await _accounts(request).keys.page(
        principal(request), limit=query.limit, offset=query.offset
    )
    return ApiKeyPage(
        items=[key_out(r) for r in rows], total=total, limit=query.limit, offset=query.offset
    )


@routes.post(
    "/auth/api-keys",
    role=Role.guest,
    body=ApiKeyCreate,
    response=ApiKeyCreated,
    status=201,
    summary="Create an API key (shown once; role at most the caller's)",
    errors=(422,),
)
async def create_key(request: web.Request, body: ApiKeyCreate) -> ApiKeyCreated:
    role = Role(body.role.value) if body.role is not None else None
    row, secret = await _accounts(request).keys.create(
        principal(request),
        name=body.name,
        role=role,
        expires_in_days=body.expires_in_days,
    )
    return ApiKeyCreated(**key_out(row).model_dump(), key=secret)


@routes.delete(
    "/auth/api-keys/{id}",
    role=Role.guest,
    summary="Revoke one of the caller's API keys",
    errors=(404,),
)
async def revoke_key(request: web.Request) -> None:
    await _accounts(request).keys.revoke(principal(request), path_id(request))
