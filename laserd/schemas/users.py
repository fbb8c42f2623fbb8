"""Users, the admin's user management and the audit log: request and response models."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from laserd.auth.passwords import check_password_bytes
from laserd.schemas.common import MAX_ID, PageQuery, StrictModel


class UserRole(StrEnum):
    admin = "admin"
    user = "user"
    guest = "guest"


class UserStatus(StrEnum):
    pending = "pending"
    active = "active"
    disabled = "disabled"


_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,31}$")
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+$")


def _username(value: str) -> str:
    if not _USERNAME.match(value):
        raise ValueError(
            "2–32 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _email(value: str) -> str:
    value = value.strip()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("must be an email address like name@example.com")
    return value


def _full_name(value: str) -> str:
    value = value.strip()
    if any(ord(c) < 32 for c in value):
        raise ValueError("must not contain control characters")
    return value


# The validators keep their own messages; ``json_schema_extra`` states the same rules in the
# OpenAPI document, so a client (or a fuzzer) that follows the document is not refused.
# Python's whitespace (what str.strip() and re's \s take) spelt out: JSON Schema's \s differs.
_WS = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_EMAIL_PART = rf"[^@{_WS}<>\"',;]+"
Username = Annotated[
    str,
    Field(min_length=2, max_length=32, json_schema_extra={"pattern": _USERNAME.pattern}),
    AfterValidator(_username),
]
Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        json_schema_extra={"pattern": rf"^[{_WS}]*{_EMAIL_PART}@{_EMAIL_PART}[{_WS}]*$"},
    ),
    AfterValidator(_email),
]
FullName = Annotated[
    str,
    Field(
        max_length=100,
        json_schema_extra={"pattern": rf"^[{_WS}]*[^\x00-\x1f]*[{_WS}]*$"},
    ),
    AfterValidator(_full_name),
]
#: The byte limit and content rules; the minimum length comes from settings (the service).
Password = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="at most 72 bytes in UTF-8, no NUL; the minimum length is a server setting",
        json_schema_extra={"maxLength": 72, "pattern": r"^[^\x00]*$"},
    ),
    AfterValidator(check_password_bytes),
]


class UserOut(BaseModel):
    id: int
    username: str
    email: str
    full_name: str
    role: UserRole
    status: UserStatus
    email_verified: bool
    created_at: str
    updated_at: str
    last_login_at: str | None


class UserCreate(StrictModel):
    username: Username
    email: Email
    password: Password
    full_name: FullName = ""
    role: UserRole = UserRole.user
    status: UserStatus = UserStatus.active
    email_verified: bool = False


class UserPatch(StrictModel):
    role: UserRole | None = None
    status: UserStatus | None = None
    email: Email | None = None
    full_name: FullName | None = None
    password: Password | None = None
    email_verified: bool | None = None


class UserQuery(PageQuery):
    role: UserRole | None = None
    status: UserStatus | None = None
    q: str | None = Field(None, max_length=100, description="search in username, email, name")


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class UnlockOut(BaseModel):
    was_locked: bool


class AuditOut(BaseModel):
    id: int
    at: str
    event: str
    actor_id: int | None
    actor: str
    target: str
    client_ip: str
    request_id: str
    details: dict[str, Any]


class AuditQuery(PageQuery):
    event: str | None = Field(None, max_length=64, description="an event name, or its prefix")
    actor_id: int | None = Field(None, ge=1, le=MAX_ID)


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int
