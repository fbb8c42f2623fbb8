"""Shapes shared by every API area: errors, pages, health."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Request models refuse unknown fields: a misspelt field must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="stable snake_case code, e.g. validation_error, machine_busy")
    message: str = Field(description="a human sentence")
    request_id: str
    details: Any = Field(None, description="for validation_error: a list of FieldError")


class ErrorEnvelope(BaseModel):
    error: ErrorBody


#: The largest row id SQLite stores; a bigger one would overflow in the query (a 500).
MAX_ID = 2**63 - 1


class PageQuery(StrictModel):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=2**53)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    uptime_s: float
    db: Literal["ok", "error"]
    machine: str = Field(description="machine state, e.g. idle, run, alarm, disconnected")
    host: str | None = Field(
        None, description="the mDNS host name announced on the LAN (laserd.local), if any"
    )
