"""Domain errors: each carries its HTTP status and a stable ``code``.

Domain code raises these; one middleware (``laserd.api.middleware``) turns them into the
error envelope of API.md. Nothing else renders errors, so every failure looks the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class LaserdError(Exception):
    """Base of every error that has a meaning for the client."""

    status: int = 500
    code: str = "internal"
    default_message: str = "Internal error."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(LaserdError):
    status, code, default_message = 400, "bad_request", "The request is malformed."


class ValidationFailed(LaserdError):
    """``details`` is a list of ``{"field": "a.b", "message": "..."}``."""

    status, code, default_message = 422, "validation_error", "The request has invalid fields."

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", details=[{"field": field, "message": message}])


class NotAuthenticated(LaserdError):
    status, code, default_message = 401, "not_authenticated", "Authentication is required."

    def __init__(self, message: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class TokenExpired(NotAuthenticated):
    code, default_message = "token_expired", "The token has expired."


class TokenInvalid(NotAuthenticated):
    code, default_message = "token_invalid", "The token is not valid."


class Forbidden(LaserdError):
    status, code, default_message = 403, "forbidden", "You are not allowed to do this."


class NotFound(LaserdError):
    status, code, default_message = 404, "not_found", "Not found."


class MethodNotAllowed(LaserdError):
    status, code, default_message = 405, "method_not_allowed", "Method not allowed."


class Conflict(LaserdError):
    status, code, default_message = 409, "conflict", "The request conflicts with the current state."


class MachineBusy(Conflict):
    code, default_message = "machine_busy", "The machine is busy with another job or motion."


class InterlockOpen(Conflict):
    code, default_message = "interlock_open", "An interlock is open; close it first."


class MachineAlarm(Conflict):
    code, default_message = "machine_alarm", "The controller is in alarm; home or unlock first."


class PayloadTooLarge(LaserdError):
    status, code, default_message = 413, "payload_too_large", "The request body is too large."


class UnsupportedMediaType(LaserdError):
    status, code, default_message = (
        415,
        "unsupported_media_type",
        "This content type is not supported.",
    )


class OutputTooLarge(LaserdError):
    """Processing would write more G-code than the cap or the free disk space allows."""

    status, code, default_message = (
        422,
        "output_too_large",
        "These settings would make more G-code than laserd may write.",
    )


class Locked(LaserdError):
    status, code, default_message = 423, "locked", "The account is locked for a while."


class RateLimited(LaserdError):
    status, code, default_message = 429, "rate_limited", "Too many requests; try again later."

    def __init__(self, retry_after_s: float, message: str | None = None) -> None:
        seconds = max(1, int(retry_after_s + 0.999))
        super().__init__(
            message, headers={"Retry-After": str(seconds)}, details={"retry_after_s": seconds}
        )


class Unavailable(LaserdError):
    status, code, default_message = 503, "unavailable", "The service is unavailable."


class InsufficientStorage(LaserdError):
    status, code, default_message = 507, "insufficient_storage", "Not enough free disk space."


def validation_details(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """pydantic errors → API.md's ``[{"field": "a.b", "message": "..."}]``.

    Here, not in the web layer, so that code below it (the command line, importers) words a
    refused value exactly as the API does."""
    out = []
    for e in exc.errors(include_url=False):
        loc = [str(p) for p in e["loc"]]
        field_name = ".".join(([prefix] if prefix else []) + loc) or (prefix or "body")
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append({"field": field_name, "message": msg})
    return out
