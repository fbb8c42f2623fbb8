"""The live-update WebSocket: ``GET /api/v1/ws``.

The first client message authenticates (``{"type": "auth", "token": ...}``: an access token or
an API key), so no token ever travels in a URL. Then the server pushes ``machine`` (at the
status rate), ``job``, ``interlock``, ``file`` (to the file's owner and admins) and ``log``
(admins) messages. Each client has a bounded queue in the event hub: a slow client loses old
``machine`` snapshots, never blocks the streamer or the other clients.

Each socket holds a file descriptor, a queue and tasks for as long as it lives, so their number
is capped per client address (``server.max_websockets_per_address``) and in total
(``server.max_websockets``); the excess is upgraded and closed at once with 4429 (the 44xx
codes mirror HTTP statuses: 4401 authentication, 4403 origin, 4429 too many). A socket that
does not authenticate is closed after :data:`AUTH_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from laserd import errors
from laserd.api.middleware import client_address
from laserd.api.routing import ApiRoutes, parse_json
from laserd.auth.principal import Principal, Role
from laserd.descriptors import ThrottledLog
from laserd.events import Event
from laserd.keys import AUTHENTICATOR, HUB, MACHINE, SAFETY, SETTINGS

log = logging.getLogger(__name__)
routes = ApiRoutes("live")

#: How long a fresh socket may wait for its auth message. The web UI sends it in the same
#: breath as the socket opens; a LAN script has no reason to wait either.
AUTH_TIMEOUT_S = 5.0
#: How often an open socket's credentials are checked again: a login ended (logout, password
#: change), an account disabled, a key revoked or a role changed closes it within this time.
REAUTH_INTERVAL_S = 10.0
CLOSE_AUTH_FAILED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_TOO_MANY = 4429
CLOSE_GOING_AWAY = 1001
#: Open sockets, so that shutdown can close them at once instead of waiting for clients.
OPEN_SOCKETS = web.AppKey("open_websockets", weakref.WeakSet)


@dataclass
class SocketCounts:
    """Open WebSockets in total and per client address, for the caps in ``[server]``."""

    total: int = 0
    by_address: collections.Counter[str] = field(default_factory=collections.Counter)

    def admit(self, address: str, *, per_address: int, total: int) -> bytes | None:
        """Count a new socket in, or say (as a close reason) which cap it would pass."""
        if self.by_address[address] >= per_address:
            return b"too many live connections from this address; try again later"
        if self.total >= total:
            return b"too many live connections; try again later"
        self.by_address[address] += 1
        self.total += 1
        return None

    def release(self, address: str) -> None:
        self.total -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


SOCKET_COUNTS = web.AppKey("websocket_counts", SocketCounts)
#: Refusals are what a flood causes: one log line per minute at most, with the count.
_refusal_log = ThrottledLog(60.0)


async def close_all(app: web.Application) -> None:
    """``on_shutdown``: tell every live client we are going away (they reconnect later)."""
    for ws in list(app.get(OPEN_SOCKETS, ())):
        with contextlib.suppress(Exception):
            await ws.close(code=CLOSE_GOING_AWAY, message=b"laserd is stopping")


def _origin_allowed(request: web.Request) -> bool:
    """Browsers always send Origin on a WebSocket: it must be this host or a CORS origin."""
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser (a LAN script): the token is what protects us
        return True
    if origin in request.app[SETTINGS].server.cors_origins:
        return True
    host = request.headers.get("Host", "")
    return origin in (f"http://{host}", f"https://{host}")


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


async def _authenticate(
    ws: web.WebSocketResponse, request: web.Request
) -> tuple[Principal, str] | None:
    try:
        msg = await ws.receive(timeout=AUTH_TIMEOUT_S)
    except TimeoutError:
        await ws.close(code=CLOSE_AUTH_FAILED, message=b"authentication timeout")
        return None
    if msg.type != WSMsgType.TEXT:
        await ws.close(code=CLOSE_AUTH_FAILED, message=b"authenticate first")
        return None
    try:
        data = parse_json(msg.data, what="The message")
        token = data["token"] if data.get("type") == "auth" else None
    except errors.BadRequest as exc:
        await ws.send_str(_dumps({"type": "error", "code": exc.code, "message": exc.message}))
        await ws.close(code=CLOSE_AUTH_FAILED, message=b"authenticate first")
        return None
    except (TypeError, KeyError, AttributeError):
        token = None
    if not isinstance(token, str) or not token or len(token) > 4096:
        await ws.send_str(
            _dumps(
                {
                    "type": "error",
                    "code": "bad_request",
                    "message": 'First send {"type": "auth", "token": "..."}.',
                }
            )
        )
        await ws.close(code=CLOSE_AUTH_FAILED, message=b"authenticate first")
        return None
    try:
        who = await request.app[AUTHENTICATOR].principal_from_token(token)
    except errors.LaserdError as exc:
        await ws.send_str(_dumps({"type": "error", "code": exc.code, "message": exc.message}))
        await ws.close(code=CLOSE_AUTH_FAILED, message=b"authentication failed")
        return None
    return who, token


async def _recheck(ws: web.WebSocketResponse, request: web.Request, token: str, role: str) -> None:
    """Close the socket once its token no longer names the same live login and role."""
    while not ws.closed:
        await asyncio.sleep(REAUTH_INTERVAL_S)
        try:
            who = await request.app[AUTHENTICATOR].principal_from_token(token)
        except errors.LaserdError:
            who = None
        if who is None or who.role.value != role:
            await ws.close(code=CLOSE_AUTH_FAILED, message=b"authentication ended")
            return


def _visible_to(who: Principal) -> Any:
    def accept(event: Event) -> bool:
        if event.type == "file":
            return who.is_admin or event.data.get("owner_id") == who.user_id
        return True

    return accept


@routes.get(
    "/ws",
    role=Role.public,
    self_auth=True,
    summary="Live updates (WebSocket)",
    produces={"application/json": "WebSocket upgrade; messages are JSON objects"},
    errors=(400, 403),
)
async def websocket(request: web.Request) -> web.StreamResponse:
    """Upgrade, then authenticate with the first message within 5 s:
    `{"type": "auth", "token": "<access token or API key>"}`. Close codes: 4401 authentication
    failed, timed out or ended; 4429 too many live connections from this address or in all
    (try again later); 1001 the server is stopping."""
    if not _origin_allowed(request):
        raise errors.Forbidden("This origin may not open the live connection.")
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    if not ws.can_prepare(request).ok:
        raise errors.BadRequest("This endpoint expects a WebSocket upgrade.")
    server = request.app[SETTINGS].server
    address = client_address(request, server.trusted_proxies)
    counts = request.app[SOCKET_COUNTS]
    await ws.prepare(request)
    refused = counts.admit(
        address, per_address=server.max_websockets_per_address, total=server.max_websockets
    )
    if refused is not None:
        held = _refusal_log.allow()
        if held is not None:
            log.warning(
                "live connection from %s refused: %s (%d more refused since the last line)",
                address,
                refused.decode(),
                held,
            )
        await ws.close(code=CLOSE_TOO_MANY, message=refused)
        return ws
    try:
        request.app[OPEN_SOCKETS].add(ws)
        await _serve(ws, request)
    finally:
        counts.release(address)
    return ws


async def _serve(ws: web.WebSocketResponse, request: web.Request) -> None:
    """An admitted socket's life: authenticate, then push events until either side closes."""
    authenticated = await _authenticate(ws, request)
    if authenticated is None:
        return
    who, token = authenticated
    hub = request.app[HUB]
    sub = hub.subscribe(who.role.value, who.user_id)
    sub.filter = _visible_to(who)
    await ws.send_str(_dumps({"type": "hello", "user_id": who.user_id, "role": who.role.value}))
    await ws.send_str(_dumps({"type": "machine", **request.app[MACHINE].snapshot()}))
    await ws.send_str(_dumps({"type": "interlock", "interlocks": request.app[SAFETY].snapshot()}))
    sender = asyncio.get_running_loop().create_task(_pump(ws, sub))
    checker = asyncio.get_running_loop().create_task(_recheck(ws, request, token, who.role.value))
    try:
        async for msg in ws:  # the client only talks to keep the connection alive
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str(_dumps({"type": "pong"}))
    finally:
        sender.cancel()
        checker.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await checker
        hub.unsubscribe(sub)


async def _pump(ws: web.WebSocketResponse, sub: Any) -> None:
    while not ws.closed:
        event = await sub.get()
        try:
            await ws.send_str(event.text(_dumps))
        except (ConnectionError, RuntimeError):
            return
