"""A bridge session's record: its row in job history and its entries in the audit log.

A session is a job of the user who accepted it (``source = "bridge"``, the peer, how it
ended), so job history, the dashboard and the audit log show it beside the web's jobs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from laserd.bridge.connections import Connection
from laserd.bridge.session import Session
from laserd.db import utcnow
from laserd.machine_use import Claim
from laserd.store import jobs as store

if TYPE_CHECKING:
    import aiosqlite

    from laserd.auth.principal import Principal
    from laserd.store.audit import AuditLog

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Running:
    """The one accepted session and its bookkeeping."""

    conn: Connection
    session: Session
    job_id: int
    claim: Claim
    accepted_by: str
    user_id: int | None
    started_at: str
    state: str = "running"
    client_gone: bool = False
    end: tuple[str, str] | None = None  # (job state, end reason) once decided
    ended: asyncio.Event = field(default_factory=asyncio.Event)


def session_view(r: Running | None) -> dict[str, Any] | None:
    """The running session as GET /bridge shows it."""
    if r is None:
        return None
    s = r.session
    return {
        "job_id": r.job_id,
        "peer": r.conn.peer,
        "accepted_by": r.accepted_by,
        "state": "paused" if s.pause_reason else r.state,
        "pause_reason": s.pause_reason,
        "lines": s.stats.lines,
        "lines_in_flight": s.in_flight,
        "started_at": r.started_at,
        "elapsed_s": round(time.monotonic() - s.stats.started_mono, 1),
        "client_connected": not r.client_gone,
    }


class SessionRecord:
    """Writes the session's job row and audit entries; never raises into the session."""

    def __init__(self, conn: aiosqlite.Connection, audit_log: AuditLog | None) -> None:
        self._db = conn
        self.audit_log = audit_log

    async def start(self, c: Connection, who: Principal | None) -> dict[str, Any]:
        return await store.insert(
            self._db,
            file_id=None,
            user_id=who.user_id if who is not None else None,
            file_name=f"bridge {c.peer}",
            lines_total=0,
            source="bridge",
            peer=c.peer,
            state="running",
        )

    async def failed_to_start(self, job_id: int, reason: str) -> None:
        await store.update(self._db, job_id, state="failed", finished_at=utcnow(),
                           end_reason=reason, error=reason)

    async def counts(self, r: Running) -> None:
        st = r.session.stats
        try:
            await store.update(self._db, r.job_id, lines_sent=st.lines_sent,
                               lines_acked=st.lines, lines_total=st.lines_sent)
        except Exception:
            log.exception("bridge: could not save the counts of session %d", r.job_id)

    async def end(self, r: Running, state: str, reason: str, elapsed_s: float) -> None:
        st = r.session.stats
        try:
            await store.update(
                self._db, r.job_id, state=state, end_reason=reason, finished_at=utcnow(),
                elapsed_s=elapsed_s, lines_sent=st.lines_sent, lines_acked=st.lines,
                lines_total=st.lines_sent, error=None if state == "completed" else reason,
            )
        except Exception:
            log.exception("bridge: could not record the end of session %d", r.job_id)
        await self.audit(
            "bridge_session_ended", None, f"job:{r.job_id}",
            {"peer": r.conn.peer, "state": state, "reason": reason, "lines": st.lines,
             "elapsed_s": elapsed_s},
        )

    async def audit(
        self, event: str, who: Principal | None, target: str, details: dict[str, Any]
    ) -> None:
        if self.audit_log is None:
            return
        try:
            await self.audit_log.record(event, actor=who, target=target, details=details,
                                     actor_name="bridge")
        except Exception:
            log.exception("bridge: audit %s failed", event)


