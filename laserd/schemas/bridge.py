"""Shapes of the GRBL bridge endpoints (API.md, "Bridge for desktop laser software")."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BridgePending(BaseModel):
    id: int
    peer: str = Field(description="the client's address and port")
    waiting_s: float


class BridgeSession(BaseModel):
    job_id: int = Field(description="the session's row in job history (source: bridge)")
    peer: str
    accepted_by: str = Field(description="user name, or \"start button\"")
    state: str = Field(description="running, paused (interlock) or ending")
    pause_reason: str | None
    lines: int = Field(description="client lines answered")
    lines_in_flight: int
    started_at: str
    elapsed_s: float
    client_connected: bool


class BridgeOut(BaseModel):
    enabled: bool
    port: int | None
    allow: list[str]
    pending: list[BridgePending]
    session: BridgeSession | None
