"""``/debug/*``: development helpers, registered only with ``[server] debug = true``."""

from __future__ import annotations

from aiohttp import web

from laserd.api.routing import ApiRoutes
from laserd.auth.principal import Role
from laserd.keys import DB, MAILER
from laserd.schemas.auth import OutboxOut, OutboxPage, OutboxQuery
from laserd.store import outbox

routes = ApiRoutes("debug")


@routes.get(
    "/debug/outbox",
    role=Role.public,
    query=OutboxQuery,
    response=OutboxPage,
    debug_only=True,
    summary="Mail laserd sent or would have sent, newest first (debug mode only)",
)
async def list_outbox(request: web.Request, query: OutboxQuery) -> OutboxPage:
    """Public on purpose: debug mode is for development and black-box tests, which read
    reset and verification links here; it is never enabled in production. The stored rows
    hold no tokens: whole bodies come from the mailer's memory (debug mode only)."""
    mailer = request.app[MAILER]
    rows, total = await outbox.list_page(
        request.app[DB], limit=query.limit, offset=query.offset, to_addr=query.to
    )
    return OutboxPage(
        items=[
            OutboxOut(
                id=r.id,
                created_at=r.created_at,
                to=r.to_addr,
                subject=r.subject,
                body=mailer.debug_body(r.id) or r.body,
                kind=r.kind,
                sent_at=r.sent_at,
                # The column only ever holds the Mailer's "smtp" or "log"; pydantic checks it.
                transport=r.transport,  # type: ignore[arg-type]
                error=r.error,
            )
            for r in rows
        ],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )
