"""The audit log: who did what, when and from where; readable by admins (``GET /audit``).

:class:`AuditLog` is the service other areas call (``app[AUDIT].record(...)``): safety trips,
jobs, accounts. Recording never raises into the caller: a full disk must not turn a safety
trip or a login into a 500; the failure is logged instead.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

import aiosqlite

from laserd.auth.principal import Principal
from laserd.db import utcnow
from laserd.origin import NO_ORIGIN, RequestOrigin

log = logging.getLogger(__name__)

COLUMNS = "id, at, event, actor_id, actor, target, client_ip, request_id, details_json"


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: str
    event: str
    actor_id: int | None
    actor: str
    target: str
    client_ip: str
    request_id: str
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> AuditRow:
        try:
            details = json.loads(row["details_json"] or "{}")
        except ValueError:
            details = {}
        return cls(
            id=row["id"],
            at=row["at"],
            event=row["event"],
            actor_id=row["actor_id"],
            actor=row["actor"],
            target=row["target"],
            client_ip=row["client_ip"],
            request_id=row["request_id"],
            details=details if isinstance(details, dict) else {"value": details},
        )


async def insert(
    conn: aiosqlite.Connection,
    *,
    event: str,
    actor_id: int | None,
    actor: str,
    target: str,
    client_ip: str,
    request_id: str,
    details: dict[str, Any],
) -> int:
    async with conn.execute(
        "INSERT INTO audit (at, event, actor_id, actor, target, client_ip, request_id,"
        " details_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            utcnow(),
            event,
            actor_id,
            actor,
            target,
            client_ip,
            request_id,
            json.dumps(details, default=str, separators=(",", ":")),
        ),
    ) as cur:
        return int(cur.lastrowid or 0)


async def list_page(
    conn: aiosqlite.Connection,
    *,
    limit: int,
    offset: int,
    event: str | None = None,
    actor_id: int | None = None,
) -> tuple[list[AuditRow], int]:
    where: list[str] = []
    args: list[Any] = []
    if event:
        # "login" matches login and login_failed; an exact name matches itself.
        where.append("(event = ? OR event LIKE ? ESCAPE '\\')")
        args.extend([event, event.replace("_", "\\_") + "\\_%"])
    if actor_id is not None:
        where.append("actor_id = ?")
        args.append(actor_id)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    async with conn.execute(f"SELECT COUNT(*) FROM audit{clause}", args) as cur:
        total = await cur.fetchone()
    async with conn.execute(
        f"SELECT {COLUMNS} FROM audit{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ) as cur:
        rows = await cur.fetchall()
    return [AuditRow.from_row(r) for r in rows], int(total[0]) if total else 0


class AuditLog:
    """Records audit events; the one writer of the ``audit`` table."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def record(
        self,
        event: str,
        *,
        actor: Principal | None = None,
        target: str = "",
        details: dict[str, Any] | None = None,
        origin: RequestOrigin = NO_ORIGIN,
        actor_name: str = "",
    ) -> None:
        """Write one event. ``actor`` is who did it (None: anonymous or the system itself).

        ``origin`` (usually :func:`laserd.origin.current_origin`) supplies the client address
        and request id; events of the system itself (a job's end, a safety trip) have none.
        """
        client_ip, request_id = origin.address, origin.request_id
        name = actor.username if actor is not None else actor_name
        try:
            await insert(
                self._conn,
                event=event,
                actor_id=actor.user_id if actor is not None else None,
                actor=name,
                target=target,
                client_ip=client_ip,
                request_id=request_id,
                details=dict(details or {}),
            )
        except (sqlite3.Error, ValueError):
            log.exception("audit event %s could not be recorded", event)
            return
        log.info("audit %s actor=%s target=%s ip=%s", event, name or "-", target or "-", client_ip)

    async def page(
        self,
        *,
        limit: int,
        offset: int,
        event: str | None = None,
        actor_id: int | None = None,
    ) -> tuple[list[AuditRow], int]:
        return await list_page(
            self._conn, limit=limit, offset=offset, event=event, actor_id=actor_id
        )
