"""HTTP middleware: request id, access log, error envelope, security headers, CORS.

Order (outermost first): request id → access log → security headers → CORS → errors. The
error middleware is innermost so that everything outside it (headers, CORS, the access line)
also applies to error answers.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from laserd import errors
from laserd.keys import SETTINGS
from laserd.logs import request_id_var, user_var
from laserd.origin import RequestOrigin, origin_scope

log = logging.getLogger(__name__)
access_log = logging.getLogger("laserd.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

#: aiohttp's own HTTP exceptions → our stable codes.
_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def request_id(request: web.Request) -> str:
    rid: str = request.get(REQUEST_ID, "-")  # aiohttp types Request.get as Any
    return rid


def client_address(request: web.Request, trusted_proxies: list[str]) -> str:
    """The client's address; ``X-Forwarded-For`` counts only when the peer is a trusted proxy."""
    peer = request.remote or ""
    if trusted_proxies and peer:
        try:
            peer_ip = ipaddress.ip_address(peer)
            trusted = any(
                peer_ip in ipaddress.ip_network(net, strict=False) for net in trusted_proxies
            )
        except ValueError:
            trusted = False
        if trusted:
            forwarded = request.headers.get("X-Forwarded-For", "")
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            if hops:
                candidate = hops[-1]
                try:
                    return str(ipaddress.ip_address(candidate))
                except ValueError:
                    return peer
    return peer


def error_body(
    request: web.Request, status: int, code: str, message: str, details: object = None
) -> web.Response:
    payload = {
        "error": {
            "code": code,
            "message": message,
            "request_id": request_id(request),
            "details": details,
        }
    }
    from laserd.api.routing import json_response  # local: routing imports keys → settings

    return json_response(payload, status=status)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    supplied = request.headers.get("X-Request-ID", "")
    rid = supplied if _SANE_ID.match(supplied) else secrets.token_hex(8)
    request[REQUEST_ID] = rid
    # What the services below the web layer know of the caller (laserd.origin).
    origin = RequestOrigin(
        address=client_address(request, request.app[SETTINGS].server.trusted_proxies),
        request_id=rid,
        user_agent=request.headers.get("User-Agent", ""),
    )
    token = request_id_var.set(rid)
    # The route layer sets the caller's name once authenticated; scoped here, so it never
    # carries over to the next request on a kept-alive connection.
    user_token = user_var.set("")
    try:
        with origin_scope(origin):
            response = await handler(request)
    except web.HTTPException as exc:  # only reached for errors raised outside the error layer
        exc.headers["X-Request-ID"] = rid
        raise
    finally:
        user_var.reset(user_token)
        request_id_var.reset(token)
    response.headers["X-Request-ID"] = rid
    return response


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        if request.app[SETTINGS].server.access_log:
            access_log.info(
                "%s %s %d %.1fms",
                request.method,
                request.path,
                status,
                (time.perf_counter() - started) * 1000,
            )


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _cors_headers(request: web.Request, origins: list[str]) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if not origin or origin not in origins:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "X-Request-ID, Retry-After",
        "Vary": "Origin",
    }


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS for the configured origins only; credentials are never combined with ``*``."""
    origins = request.app[SETTINGS].server.cors_origins
    headers = _cors_headers(request, origins)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        if not headers:
            return error_body(request, 403, "forbidden", "This origin is not allowed.")
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
                "Access-Control-Allow-Headers": (
                    "Authorization, Content-Type, X-Api-Key, X-Request-ID, X-Refresh-Cookie"
                ),
                "Access-Control-Max-Age": "600",
            }
        )
        return web.Response(status=204, headers=headers)
    response = await handler(request)
    response.headers.update(headers)
    return response


def _database_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds a lock past the busy timeout."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes API.md's envelope; unexpected ones are a 500 with no traceback."""
    try:
        response = await handler(request)
    except errors.LaserdError as exc:
        resp = error_body(request, exc.status, exc.code, exc.message, exc.details)
        resp.headers.update(exc.headers)
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "error")
        message = {
            404: "Not found.",
            405: f"Method {request.method} is not allowed here.",
            413: "The request body is too large.",
        }.get(exc.status, exc.reason or "Error.")
        resp = error_body(request, exc.status, code, message)
        if exc.status == 405 and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except ConnectionResetError:  # the client went away; nothing to answer
        raise
    except sqlite3.OperationalError as exc:
        if not _database_busy(exc):
            log.exception("unhandled error in %s %s", request.method, request.path)
            return error_body(request, 500, "internal", "Internal error; it has been logged.")
        # Another process held the database past the busy timeout: a passing condition, so
        # "try again", not an internal error.
        log.warning("database busy in %s %s: %s", request.method, request.path, exc)
        resp = error_body(
            request, 503, "database_busy", "The database is busy; try again in a few seconds."
        )
        resp.headers["Retry-After"] = "5"
        return resp
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_body(request, 500, "internal", "Internal error; it has been logged.")
    return response


MIDDLEWARES = (
    request_id_middleware,
    access_log_middleware,
    security_headers_middleware,
    cors_middleware,
    error_middleware,
)
