"""Setup, login, tokens, profile, recovery and API keys: request and response models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from laserd.schemas.common import PageQuery, StrictModel
from laserd.schemas.users import Email, FullName, Password, Username, UserOut, UserRole


class SetupStatus(BaseModel):
    needed: bool = Field(description="true while no admin exists")


class SetupIn(StrictModel):
    setup_code: str = Field(min_length=1, max_length=64)
    username: Username
    email: Email
    password: Password
    full_name: FullName = ""


class RegisterIn(StrictModel):
    username: Username
    email: Email
    password: Password
    full_name: FullName = ""


class LoginIn(StrictModel):
    username: str = Field(min_length=1, max_length=254, description="username or email")
    password: Password


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str = Field(
        description="empty when the request asked for the HttpOnly cookie (X-Refresh-Cookie: 1)"
    )
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_expires_in: int = Field(description="seconds until the refresh token expires")
    user: UserOut


class RefreshIn(StrictModel):
    refresh_token: str = Field(
        "", max_length=4096, description="omit with X-Refresh-Cookie: 1 to use the cookie"
    )


class LogoutIn(StrictModel):
    refresh_token: str = Field(
        "", max_length=4096, description="ends this token's login when no access token is sent"
    )


class ProfilePatch(StrictModel):
    email: Email | None = None
    full_name: FullName | None = None
    current_password: Password | None = Field(
        None,
        description="required (and checked) when `email` changes: 422 on this field otherwise",
    )


class ChangePasswordIn(StrictModel):
    current_password: Password
    new_password: Password
    revoke_api_keys: bool = Field(
        True,
        description="also revoke every API key of the account (default: yes — a key minted "
        "with a stolen token must not outlive the recovery; send false for a routine change)",
    )


class LogoutAllIn(StrictModel):
    revoke_api_keys: bool = Field(
        True, description="also revoke every API key of the account (an empty body: yes)"
    )


class ResetRequestIn(StrictModel):
    email: str = Field(min_length=1, max_length=254)


class ResetConfirmIn(StrictModel):
    token: str = Field(min_length=1, max_length=256)
    new_password: Password


class TokenIn(StrictModel):
    token: str = Field(min_length=1, max_length=256)


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    message: str


class ApiKeyCreate(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    role: UserRole | None = Field(None, description="at most the owner's role; default: it")
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the first characters of the key, to recognise it")
    role: UserRole
    created_at: str
    expires_at: str | None
    last_used_at: str | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself: shown this once, only its hash is stored")


class ApiKeyPage(BaseModel):
    items: list[ApiKeyOut]
    total: int
    limit: int
    offset: int


class OutboxQuery(PageQuery):
    to: str | None = Field(None, max_length=254, description="only messages to this address")


class OutboxOut(BaseModel):
    id: int
    created_at: str
    to: str
    subject: str
    body: str
    kind: str = Field(description="password_reset, verify_email, ...")
    sent_at: str | None
    transport: Literal["smtp", "log"]
    error: str | None


class OutboxPage(BaseModel):
    items: list[OutboxOut]
    total: int
    limit: int
    offset: int
