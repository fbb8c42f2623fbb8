"""Guards of the listening socket against clients that hold connections instead of using them.

An attacker on the LAN needs no account to open sockets: every one costs laserd a file
descriptor, and once descriptors run out nothing answers (not even ``/health``) while asyncio
logs a traceback per failed ``accept()``. What protects the daemon, outermost first:

- ``LimitNOFILE=`` in the systemd unit gives the process room above the caps below.
- :class:`ConnectionGuard` wraps aiohttp's protocol factory: a connection past the cap per
  client address (``server.max_connections_per_address``) or in total
  (``server.max_connections``) gets a fixed 503 envelope and is closed before anything of it
  is read or parsed.
- ``server.header_timeout_s`` (aiohttp's keep-alive timer, which also runs from the moment a
  connection opens): a connection that has not delivered a complete request head that long
  after opening, or after its previous answer, is closed.
- :mod:`laserd.descriptors`: the budget the caps must fit in, checked at start, and should
  descriptors still run out, one log line now and then instead of a traceback per
  ``accept()``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import Response, StreamResponse

from laserd.descriptors import BACKLOG, ThrottledLog
from laserd.logs import printable
from laserd.settings import ServerSettings

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- answers of the stack

#: Codes for the statuses aiohttp's own layer can answer (the rest of API.md's table lives in
#: the error middleware; these never reach it).
_STACK_CODES = {
    400: "bad_request",
    413: "payload_too_large",
    414: "bad_request",
    431: "bad_request",
    500: "internal",
    503: "unavailable",
    504: "unavailable",
}


def envelope_bytes(status: int, code: str, message: str, request_id: str) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "request_id": request_id, "details": None}},
        separators=(",", ":"),
    ).encode()


def _stack_message(status: int, exc: BaseException | None) -> str:
    if isinstance(exc, LineTooLong):
        return (
            "The request line or a header is too long (the address with its query string, "
            "or one header, may hold at most 8190 bytes)."
        )
    if isinstance(exc, HttpProcessingError) or status == 400:
        return "The request is not valid HTTP."
    if status >= 500:
        return "Internal error; it has been logged."
    return HTTPStatus(status).phrase + "."


class EnvelopeRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors with API.md's envelope.

    aiohttp answers what it cannot parse (a request line past 8190 bytes, bytes HTTP does not
    allow in a URL or header) before any application code runs, so the error middleware never
    sees it; its stock answer is ``text/plain`` and a logged traceback per request. Any client
    can send such requests at will, so each is answered with the JSON envelope and logged in
    one throttled line.
    """

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> StreamResponse:
        if request.writer.output_size > 0:  # an answer has begun: nothing else can be said
            raise ConnectionError("the answer was already started; the connection is closed")
        if status >= 500:
            log.error("error serving %s", request.remote, exc_info=exc)
        else:
            held = _malformed_log.allow()
            if held is not None:
                log.warning(
                    "malformed request from %s: %s (%d more since the last line)",
                    request.remote,
                    printable(message or str(exc or status))[:200],
                    held,
                )
        rid = secrets.token_hex(8)
        code = _STACK_CODES.get(status, "bad_request" if status < 500 else "internal")
        resp = Response(
            status=status,
            body=envelope_bytes(status, code, _stack_message(status, exc), rid),
            content_type="application/json",
            charset="utf-8",
            headers={
                "X-Request-ID": rid,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
                "Server": "laserd",
            },
        )
        resp.force_close()
        return resp


_malformed_log = ThrottledLog(60.0)


# ---------------------------------------------------------------------------- connection caps


@dataclass
class ConnectionCounts:
    total: int = 0
    by_address: collections.Counter[str] = field(default_factory=collections.Counter)


class ConnectionGuard:
    """The protocol factory of the listening socket: caps, a header deadline, then aiohttp.

    A connection past the per-address cap is refused. At the total cap, the oldest connection
    that has not yet sent a complete request head makes room for the new one (it is either an
    attacker's half-open socket or a client slower than everyone since): so sockets spread
    over many addresses cannot lock out a client that actually asks something. Only when every
    open connection is in use is the new one refused.

    ``handler_kwargs`` are the keyword arguments the runner passes to aiohttp's connection
    handler (the same dict given to ``web.AppRunner``), so the handlers made here are
    configured exactly like aiohttp's own.
    """

    def __init__(
        self,
        server: web.Server,
        settings: ServerSettings,
        handler_kwargs: dict[str, Any],
    ) -> None:
        self.server = server
        self.settings = settings
        self.handler_kwargs = handler_kwargs
        self.counts = ConnectionCounts()
        #: Admitted connections still waiting for their first complete head, oldest first.
        self.waiting: dict[GuardedConnection, None] = {}
        self.refusals = ThrottledLog(60.0)
        self.timeouts = ThrottledLog(60.0)
        self.evictions = ThrottledLog(60.0)
        self._trusted = _networks(settings.trusted_proxies)

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self)

    def make_handler(self) -> RequestHandler:
        return EnvelopeRequestHandler(
            self.server, loop=asyncio.get_running_loop(), **self.handler_kwargs
        )

    def admit(self, conn: GuardedConnection) -> str | None:
        """Count a new connection in (making room if it can), or say why it is refused."""
        address = conn.address
        if self.counts.by_address[address] >= self.settings.max_connections_per_address and not (
            _in(address, self._trusted)
        ):
            return "too many open connections from this address"
        if self.counts.total >= self.settings.max_connections:
            oldest = next(iter(self.waiting), None)
            if oldest is None:
                return "too many open connections"
            held = self.evictions.allow()
            if held is not None:
                log.warning(
                    "connection cap %d reached: closed a connection from %s that sent no "
                    "complete request (%d more since the last line)",
                    self.settings.max_connections,
                    oldest.address,
                    held,
                )
            oldest.close()
        self.counts.total += 1
        self.counts.by_address[address] += 1
        self.waiting[conn] = None
        return None

    def head_complete(self, conn: GuardedConnection) -> None:
        self.waiting.pop(conn, None)

    def release(self, conn: GuardedConnection) -> None:
        self.waiting.pop(conn, None)
        self.counts.total -= 1
        self.counts.by_address[conn.address] -= 1
        if self.counts.by_address[conn.address] <= 0:
            del self.counts.by_address[conn.address]

    def log_refusal(self, address: str, reason: str) -> None:
        held = self.refusals.allow()
        if held is not None:
            log.warning(
                "connection from %s refused: %s (cap %d, per address %d; %d more refused "
                "since the last line)",
                address,
                reason,
                self.settings.max_connections,
                self.settings.max_connections_per_address,
                held,
            )

    def log_timeout(self, address: str) -> None:
        held = self.timeouts.allow()
        if held is not None:
            log.warning(
                "connection from %s closed: no complete request head within %.0f s "
                "(%d more since the last line)",
                address,
                self.settings.header_timeout_s,
                held,
            )


def _networks(entries: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    return out


def _in(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def refusal_bytes(reason: str) -> bytes:
    """A complete ``503`` with the envelope, written before anything is read."""
    rid = secrets.token_hex(8)
    body = envelope_bytes(503, "unavailable", f"The server has {reason}; try again shortly.", rid)
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 5\r\n"
        "Connection: close\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"X-Request-ID: {rid}\r\n"
        "Server: laserd\r\n\r\n"
    )
    return head.encode() + body


#: The end of a request head: an empty line (HTTP says CRLF; a bare LF is tolerated).
_HEAD_END = re.compile(rb"\n\r?\n")


class GuardedConnection(asyncio.Protocol):
    """One accepted connection: counted, given a deadline for its first request head, and
    handed to aiohttp's handler; or refused with a 503 at once."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.inner: RequestHandler | None = None
        self.address = ""
        self.transport: asyncio.Transport | None = None
        self.counted = False
        self._deadline: asyncio.TimerHandle | None = None
        self._head_tail = b""  # the last bytes seen, for a head end split across reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        refused = self.guard.admit(self)
        if refused is not None:
            self.guard.log_refusal(self.address, refused)
            with contextlib.suppress(Exception):
                self.transport.write(refusal_bytes(refused))
            self.transport.close()
            return
        self.counted = True
        self.inner = self.guard.make_handler()
        self._deadline = asyncio.get_running_loop().call_later(
            self.guard.settings.header_timeout_s, self._head_overdue
        )
        self.inner.connection_made(transport)

    def _head_overdue(self) -> None:
        self._deadline = None
        self.guard.log_timeout(self.address)
        self.close()

    def close(self) -> None:
        """Give up this connection now; its place is free at once."""
        self._release()
        if self.transport is not None:
            self.transport.abort()

    def _release(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self.counted:
            self.counted = False
            self.guard.release(self)

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return  # refused: nothing is read
        if self._deadline is not None:
            seen = self._head_tail + data
            if _HEAD_END.search(seen):
                self._deadline.cancel()
                self._deadline = None
                self._head_tail = b""
                self.guard.head_complete(self)
            else:
                self._head_tail = seen[-2:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.inner is not None:
            self.inner.eof_received()  # aiohttp's handler returns None: the transport closes
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._release()
        if self.inner is None:
            return
        inner, self.inner = self.inner, None
        inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a :class:`ConnectionGuard`."""

    __slots__ = ("_guard_settings", "_handler_kwargs", "_host", "_port", "guard")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        settings: ServerSettings,
        handler_kwargs: dict[str, Any],
        *,
        backlog: int = BACKLOG,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._guard_settings = settings
        self._handler_kwargs = handler_kwargs
        self.guard: ConnectionGuard | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "the runner is not set up"
        self.guard = ConnectionGuard(server, self._guard_settings, self._handler_kwargs)
        self._server = await asyncio.get_running_loop().create_server(
            self.guard, self._host, self._port, backlog=self._backlog, reuse_address=True
        )

    @property
    def port(self) -> int:
        server = self._server  # typed AbstractServer by aiohttp; create_server made a Server
        if isinstance(server, asyncio.Server) and server.sockets:
            return int(server.sockets[0].getsockname()[1])
        return self._port


# ---------------------------------------------------------------------------- serving


def serving_kwargs(settings: ServerSettings) -> dict[str, Any]:
    """Keyword arguments of aiohttp's connection handler, for ``web.AppRunner`` and the guard.

    ``keepalive_timeout``: the idle time after an answer before the next request head must be
    complete (aiohttp closes a connection that waits longer); the first head's deadline is
    the guard's.
    """
    return {"access_log": None, "keepalive_timeout": settings.header_timeout_s}
